// The chat page's script, a file rather than inline so that the page's
// Content-Security-Policy can refuse every inline script. chat.html loads it
// with its integrity hash (the chat's unit tests check the hash).

const $ = (id) => document.getElementById(id);
const log = (li) => { $("log").append(li); $("log").scrollTop = $("log").scrollHeight; };
const note = (text) => { const li = document.createElement("li"); li.className = "note"; li.textContent = text; log(li); };
const setStatus = (on, text) => { $("status").className = "status " + (on ? "on" : "off"); $("status").textContent = text; };

// The session cookie travels with the handshake: no token, no extra code.
const socket = io("/chat");
socket.on("connect", () => {
  socket.emit("whoami", (me) => {
    setStatus(true, "connected as " + me.user);
    $("counter").value = me.counter ?? 0;
  });
});
socket.on("connect_error", (err) => { setStatus(false, err.message); });
// The server is stopping (a restart or a deploy): it says so, then
// disconnects; the page connects again a moment later.
let stopping = false;
socket.on("server_stopping", (why, ack) => { stopping = true; note(why.message); if (ack) ack(); });
socket.on("disconnect", (reason) => {
  setStatus(false, "disconnected");
  if (reason !== "io server disconnect") return;
  if (stopping) { stopping = false; setTimeout(() => socket.connect(), 1000 + Math.random() * 2000); return; }
  note("Signed out: this session ended."); setTimeout(() => location.assign("/"), 800);
});
socket.on("message", (m) => {
  const li = document.createElement("li");
  const b = document.createElement("b");
  b.textContent = m.user;
  li.append(b, document.createTextNode(m.text));
  log(li);
});
$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (text) { socket.emit("message", text); $("text").value = ""; }
});
$("incr").addEventListener("click", () => {
  socket.emit("incr", (n) => {
    if (typeof n === "number") $("counter").value = n;
    else note(n.message); // not saved: the reason's hint
  });
});
