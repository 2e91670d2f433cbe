// Placeholder: connects and shows what the server sends, as text only.
"use strict";
const log = document.getElementById("log");
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
ws.onmessage = (e) => { const li = document.createElement("li"); li.textContent = e.data; log.append(li); };
