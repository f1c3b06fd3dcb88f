// A small STOMP 1.2 client over the raw WebSocket at /ws/chat.
//
// It authenticates with the HttpOnly jwt_token cookie that the browser sends with the
// handshake (same origin), reconnects with exponential back-off, and re-subscribes every
// subscription on each new connection; a subscription may supply fresh headers each time
// (the chat client uses that for since-message-id, so missed messages are replayed).
//
// An ERROR frame that names a subscription ends that subscription alone: the server dropped it
// (a member removed from a room) and keeps the connection open, so it is forgotten here too and
// never subscribed again; any other ERROR goes to the client's onError.

const HEARTBEAT_MS = 10000;
const FIRST_RETRY_MS = 500;
const LAST_RETRY_MS = 15000;
const SUBSCRIBED_RECEIPT = "subscribed";

function escapeHeader(value) {
  return String(value).replace(/\\/g, "\\\\").replace(/\r/g, "\\r").replace(/\n/g, "\\n").replace(/:/g, "\\c");
}

function unescapeHeader(value) {
  return value.replace(/\\(.)/g, function (_, c) {
    return { "\\": "\\", r: "\r", n: "\n", c: ":" }[c] || c;
  });
}

function encodeFrame(command, headers, body) {
  let text = command + "\n";
  for (const [name, value] of Object.entries(headers || {})) {
    text += escapeHeader(name) + ":" + escapeHeader(value) + "\n";
  }
  return text + "\n" + (body || "") + "\0";
}

// Frames arrive whole, one or more per WebSocket message; a lone "\n" is a heart-beat.
// Bodies are JSON text without NUL, so splitting on NUL is exact here.
function decodeFrames(data) {
  const frames = [];
  for (const chunk of data.split("\0")) {
    const text = chunk.replace(/^[\r\n]+/, "");
    if (!text) continue;
    const split = text.indexOf("\n\n");
    const head = split < 0 ? text : text.slice(0, split);
    const lines = head.split(/\r?\n/);
    const headers = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      const name = unescapeHeader(line.slice(0, colon));
      if (!(name in headers)) headers[name] = unescapeHeader(line.slice(colon + 1));
    }
    frames.push({ command: lines[0], headers: headers, body: split < 0 ? "" : text.slice(split + 2) });
  }
  return frames;
}

export class StompClient {
  constructor(url, handlers) {
    this.url = url;
    // onConnected() (each time the subscriptions are in force), onDisconnected(attempt, delayMs),
    // onError(message, details)
    this.handlers = handlers;
    this.subscriptions = new Map(); // id -> {destination, onMessage, headers(), onEnded(message, details)}
    this.socket = null;
    this.connected = false;
    this.stopped = true;
    this.attempt = 0;
    this.timers = [];
    this.retryTimer = null;
    this.lastReceived = 0;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.socket) {
      if (this.connected) this.socket.send(encodeFrame("DISCONNECT", {}));
      this.socket.close(1000, "bye");
    }
    this.cleanUp();
  }

  subscribe(id, destination, onMessage, headers, onEnded) {
    const subscription = {
      destination: destination,
      onMessage: onMessage,
      headers: headers || (() => ({})),
      onEnded: onEnded || (() => {}),
    };
    this.subscriptions.set(id, subscription);
    if (this.connected) this.sendSubscribe(id, subscription);
  }

  unsubscribe(id) {
    if (!this.subscriptions.delete(id)) return;
    if (this.connected) this.socket.send(encodeFrame("UNSUBSCRIBE", { id: id }));
  }

  // For subscriptions the server has ended (or is ending) itself: an UNSUBSCRIBE would only be
  // answered with an ERROR.
  forget(id) {
    this.subscriptions.delete(id);
  }

  send(destination, body) {
    if (!this.connected) return false;
    this.socket.send(encodeFrame("SEND", { destination: destination, "content-type": "application/json" }, body));
    return true;
  }

  open() {
    const socket = new WebSocket(this.url, ["v12.stomp", "v11.stomp"]);
    this.socket = socket;
    socket.onopen = () => {
      socket.send(encodeFrame("CONNECT", {
        "accept-version": "1.2,1.1",
        host: location.hostname,
        "heart-beat": HEARTBEAT_MS + "," + HEARTBEAT_MS,
      }));
    };
    socket.onmessage = (event) => this.received(event.data);
    socket.onclose = () => {
      if (this.socket === socket) this.lost();
    };
  }

  received(data) {
    this.lastReceived = Date.now();
    for (const frame of decodeFrames(String(data))) {
      // The answer (RECEIPT, or ERROR) to the last SUBSCRIBE sent on connecting: every
      // subscription is in force from here on.
      const settled = frame.headers["receipt-id"] === SUBSCRIBED_RECEIPT;
      if (frame.command === "CONNECTED") {
        this.onConnected(frame);
      } else if (frame.command === "MESSAGE") {
        const subscription = this.subscriptions.get(frame.headers.subscription);
        if (subscription) subscription.onMessage(JSON.parse(frame.body), frame.headers);
      } else if (frame.command === "ERROR" && "subscription" in frame.headers) {
        this.subscriptionEnded(frame);
      } else if (frame.command === "ERROR") {
        this.handlers.onError(frame.headers.message || "Error", frame.body);
      }
      if (settled) this.handlers.onConnected();
    }
  }

  subscriptionEnded(frame) {
    const id = frame.headers.subscription;
    const subscription = this.subscriptions.get(id);
    if (!subscription) return; // already ended, or unsubscribed meanwhile
    this.subscriptions.delete(id);
    subscription.onEnded(frame.headers.message || "Subscription ended", frame.body);
  }

  onConnected(frame) {
    this.connected = true;
    this.attempt = 0;
    const [serverSends, serverWants] = (frame.headers["heart-beat"] || "0,0").split(",").map(Number);
    if (serverWants > 0) {
      this.timers.push(setInterval(() => this.socket.send("\n"), Math.max(serverWants, HEARTBEAT_MS) / 2));
    }
    if (serverSends > 0) {
      const limit = Math.max(serverSends, HEARTBEAT_MS) * 2.5;
      this.timers.push(setInterval(() => {
        if (Date.now() - this.lastReceived > limit) this.socket.close(4000, "heart-beat missed");
      }, limit / 2));
    }
    // onConnected() once the server has taken every SUBSCRIBE (it handles a connection's frames
    // in order): what the page then fetches cannot miss a push that comes after the fetch.
    const subscriptions = [...this.subscriptions];
    if (subscriptions.length === 0) {
      this.handlers.onConnected();
      return;
    }
    subscriptions.forEach(([id, subscription], index) => {
      const last = index === subscriptions.length - 1;
      this.sendSubscribe(id, subscription, last ? { receipt: SUBSCRIBED_RECEIPT } : {});
    });
  }

  sendSubscribe(id, subscription, extra) {
    const headers = Object.assign({ id: id, destination: subscription.destination }, subscription.headers(), extra);
    this.socket.send(encodeFrame("SUBSCRIBE", headers));
  }

  lost() {
    this.cleanUp();
    if (this.stopped) return;
    // Exponential back-off with jitter, so a restarted server is not hit by every tab at once.
    const ceiling = Math.min(LAST_RETRY_MS, FIRST_RETRY_MS * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempt += 1;
    this.handlers.onDisconnected(this.attempt, delay);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  cleanUp() {
    this.connected = false;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.onmessage = null;
      this.socket = null;
    }
  }
}
