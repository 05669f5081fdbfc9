// A real Redis Cluster for the chat's tests: three primaries and three
// replicas of stock redis-server on free loopback ports (each also needs its
// bus port, +10000), cluster-node-timeout 1000, persistence off, in a
// temporary directory. Formed deterministically (node 3+i replicates node i;
// slots 0-5460, 5461-10922, 10923-16383) with plain commands, in about 2.5 s.
// `stop()` kills every node and removes the directory.
"use strict";

const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { spawn } = require("node:child_process");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const RANGES = [[0, 5460], [5461, 10922], [10923, 16383]];

/** Resolves to whether `port` on loopback can be listened on. */
function canListen(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A free loopback port whose bus port (+10000) is free too. */
async function freePair(taken) {
  for (let i = 0; i < 200; i++) {
    const port = await new Promise((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
    if (port + 10000 > 65535 || taken.has(port) || taken.has(port + 10000)) continue;
    if (await canListen(port + 10000)) return port;
  }
  throw new Error("no free loopback port pair for a cluster node");
}

/** Parses one RESP reply from `buf` at `at`; [value, next] or null when incomplete. */
function parse(buf, at = 0) {
  const eol = buf.indexOf("\r\n", at);
  if (eol < 0) return null;
  const tag = String.fromCharCode(buf[at]);
  const line = buf.toString("utf8", at + 1, eol);
  const next = eol + 2;
  switch (tag) {
    case "+": return [line, next];
    case "-": return [new Error(line), next];
    case ":": return [Number(line), next];
    case "$": {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return null;
      return [buf.toString("utf8", next, next + n), next + n + 2];
    }
    case "*": {
      const n = Number(line);
      if (n < 0) return [null, next];
      const out = [];
      let pos = next;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, pos);
        if (!r) return null;
        out.push(r[0]);
        pos = r[1];
      }
      return [out, pos];
    }
    default: throw new Error(`unexpected RESP reply ${JSON.stringify(buf.toString())}`);
  }
}

/** Sends one command to loopback `port`; resolves to its parsed reply (an Error for -ERR). */
function command(port, args, ms = 3000) {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => { c.destroy(); reject(new Error(`no reply from ${port} within ${ms} ms`)); }, ms);
    c.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parse(buf);
      if (r) { clearTimeout(t); c.destroy(); resolve(r[0]); }
    });
    c.on("error", (e) => { clearTimeout(t); reject(e); });
    c.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join(""));
  });
}

/** A flat RESP2 key/value array as an object. */
const pairs = (a) => {
  const o = {};
  for (let i = 0; i + 1 < a.length; i += 2) o[a[i]] = a[i + 1];
  return o;
};

/** CLUSTER SHARDS as [{ ranges: [[a, b]], nodes: [{ port, role, health }] }]. */
function shardsOf(reply) {
  return reply.map((s) => {
    const o = pairs(s);
    const ranges = [];
    for (let i = 0; i + 1 < o.slots.length; i += 2) ranges.push([o.slots[i], o.slots[i + 1]]);
    return { ranges, nodes: o.nodes.map((n) => { const p = pairs(n); return { port: p.port, role: p.role, health: p.health }; }) };
  });
}

const primaryOfShard = (s) => (s.nodes.find((n) => n.role === "master" && n.health === "online") || {}).port;

/**
 * Starts and forms a cluster; `events` is every node's
 * notify-keyspace-events at start (Redis's default: none).
 */
async function startCluster({ events = "" } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-cluster-"));
  const taken = new Set();
  const ports = [];
  for (let i = 0; i < 6; i++) {
    const p = await freePair(taken);
    taken.add(p); taken.add(p + 10000);
    ports.push(p);
  }
  const children = new Map();
  const start = (port) => {
    const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
      "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--cluster-node-timeout", "1000",
      "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1",
      "--notify-keyspace-events", events, "--dir", dir], { stdio: "ignore" });
    children.set(port, child);
  };
  const cluster = {
    ports,
    seeds: ports.slice(0, 3).map((p) => `redis://127.0.0.1:${p}/`),
    command: (port, ...args) => command(port, args),
    /** The shards as a live node sees them. */
    async shards() {
      for (const p of ports) {
        if (!children.has(p)) continue;
        try { return shardsOf(await command(p, ["CLUSTER", "SHARDS"], 1000)); } catch { /* next */ }
      }
      throw new Error("no node answered CLUSTER SHARDS");
    },
    /** The port of the online primary of `key`'s slot. */
    async primaryOf(key) {
      const live = ports.find((p) => children.has(p));
      const slot = await command(live, ["CLUSTER", "KEYSLOT", key]);
      const shard = (await cluster.shards()).find((s) => s.ranges.some(([a, b]) => a <= slot && slot <= b));
      return shard && primaryOfShard(shard);
    },
    /** The primaries' ports now. */
    async primaries() {
      return (await cluster.shards()).filter((s) => s.ranges.length > 0).map(primaryOfShard).filter(Boolean);
    },
    /** The port of the online replica of the primary on `port`. */
    async replicaOf(port) {
      const shard = (await cluster.shards()).find((s) => primaryOfShard(s) === port);
      const r = shard && shard.nodes.find((n) => n.role !== "master" && n.health === "online");
      if (!r) throw new Error(`${port} is no primary with an online replica`);
      return r.port;
    },
    /** `cmd ...args` about `key`, on its primary (following MOVED). */
    async keyed(key, ...args) {
      let port = await cluster.primaryOf(key);
      for (let i = 0; i < 5; i++) {
        const r = await command(port, args);
        if (r instanceof Error && r.message.startsWith("MOVED")) { port = Number(r.message.split(":").pop()); continue; }
        return r;
      }
      throw new Error("too many redirections");
    },
    async isPrimary(port) {
      try { return (await command(port, ["ROLE"], 500))[0] === "master"; } catch { return false; }
    },
    /** SIGKILLs the node on `port`. */
    kill(port) {
      const c = children.get(port);
      children.delete(port);
      if (c) c.kill("SIGKILL");
    },
    /** Resolves once the node on `port` is a primary with cluster_state:ok; how long it took. */
    async waitPrimary(port, ms = 15000) {
      const t0 = Date.now();
      while (Date.now() - t0 < ms) {
        if (await cluster.isPrimary(port)) {
          const info = await command(port, ["CLUSTER", "INFO"], 500).catch(() => "");
          if (String(info).includes("cluster_state:ok")) return Date.now() - t0;
        }
        await sleep(10);
      }
      throw new Error(`node ${port} did not become a primary within ${ms} ms`);
    },
    stop() {
      for (const c of children.values()) c.kill("SIGKILL");
      children.clear();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const p of ports) start(p);
    for (const p of ports) {
      for (let i = 0; ; i++) {
        try { if ((await command(p, ["PING"], 200)) === "PONG") break; } catch { /* not yet */ }
        if (i > 200) throw new Error(`redis-server on ${p} did not start`);
        await sleep(20);
      }
    }
    const ok = (r, what) => { if (r instanceof Error) throw new Error(`${what}: ${r.message}`); return r; };
    for (let i = 0; i < 3; i++) {
      ok(await command(ports[i], ["CLUSTER", "ADDSLOTSRANGE", RANGES[i][0], RANGES[i][1]]), "ADDSLOTSRANGE");
      ok(await command(ports[i], ["CLUSTER", "SET-CONFIG-EPOCH", i + 1]), "SET-CONFIG-EPOCH");
    }
    for (const p of ports.slice(1)) ok(await command(p, ["CLUSTER", "MEET", "127.0.0.1", ports[0]]), "MEET");
    for (let i = 0; i < 3; i++) {
      const id = await command(ports[i], ["CLUSTER", "MYID"]);
      for (let n = 0; !(await command(ports[3 + i], ["CLUSTER", "NODES"])).split("\n").some((l) => l.startsWith(`${id} `)); n++) {
        if (n > 500) throw new Error("a replica never learned of its primary");
        await sleep(20);
      }
      ok(await command(ports[3 + i], ["CLUSTER", "REPLICATE", id]), "REPLICATE");
    }
    // Whole: every node ok, every node sees six online, replicas linked.
    for (let n = 0; ; n++) {
      let whole = true;
      for (const p of ports) {
        const info = await command(p, ["CLUSTER", "INFO"]);
        const online = (await cluster.shards()).flatMap((s) => s.nodes).filter((x) => x.health === "online").length;
        const repl = await command(p, ["INFO", "replication"]);
        if (!info.includes("cluster_state:ok") || online < 6 || (repl.includes("role:slave") && !repl.includes("master_link_status:up"))) { whole = false; break; }
      }
      if (whole) break;
      if (n > 1500) throw new Error("the cluster did not become whole in 30 s");
      await sleep(20);
    }
  } catch (e) {
    cluster.stop();
    throw e;
  }
  return cluster;
}

module.exports = { startCluster };
