// Drives the reference browser client's libraries (sockjs-client 1.x + stompjs 2.3.3)
// against a running server, the way the reference page does, and prints what arrives.
//
//   node sockjs_client.js <base-url> <jwt> <subscribe-destination>... [--send dest body] [--count N] [--timeout ms]
//                         [--origin url] [--transports name,...]
//
// --origin sends that Origin with the WebSocket handshake, as a browser does for the page that
// opens it (Node sends none by default). --transports limits SockJS to those transports
// (xhr-streaming, xhr-polling, eventsource), as when WebSockets are unavailable.
//
// Prints one JSON line per event: {"event":"connected"|"subscribed"|"message"|"error"|"timeout", ...};
// "subscribed" comes once the server has confirmed every subscription with a RECEIPT.
const SockJS = require("sockjs-client");
const Stomp = require("stompjs/lib/stomp.js").Stomp;

// The browser build takes its timers from window; give it Node's, as stomp-node.js does.
Stomp.setInterval = (interval, callback) => setInterval(callback, interval);
Stomp.clearInterval = (id) => clearInterval(id);

const args = process.argv.slice(2);
const [base, token] = args;
const destinations = [];
let count = 1;
let timeout = 15000;
let origin = null;
let transports = null;
const sends = [];
for (let i = 2; i < args.length; i++) {
  if (args[i] === "--count") count = Number(args[++i]);
  else if (args[i] === "--timeout") timeout = Number(args[++i]);
  else if (args[i] === "--send") sends.push([args[++i], args[++i]]);
  else if (args[i] === "--origin") origin = args[++i];
  else if (args[i] === "--transports") transports = args[++i].split(",");
  else destinations.push(args[i]);
}

const print = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const options = origin ? { transportOptions: { websocket: { headers: { Origin: origin } } } } : {};
if (transports) options.transports = transports;
const client = Stomp.over(new SockJS(base + "/ws/chat", null, options));
client.debug = null;
let received = 0;
setTimeout(() => { print({ event: "timeout", received }); process.exit(2); }, timeout);

client.connect({ jwt_token: token }, (frame) => {
  print({ event: "connected", version: frame.headers.version, user: frame.headers["user-name"] });
  // "subscribed" once the server's RECEIPT for every SUBSCRIBE says it is live: from then on
  // no message sent to those destinations can be missed.
  let unconfirmed = destinations.length;
  const subscribed = () => {
    for (const [destination, body] of sends) client.send(destination, {}, body);
    print({ event: "subscribed" });
  };
  client.onreceipt = () => {
    unconfirmed -= 1;
    if (unconfirmed === 0) subscribed();
  };
  destinations.forEach((destination, n) => {
    client.subscribe(destination, (message) => {
      print({ event: "message", destination: message.headers.destination, body: JSON.parse(message.body) });
      received += 1;
      if (received >= count) client.disconnect(() => process.exit(0));
    }, { receipt: `subscribed-${n}` });
  });
  if (unconfirmed === 0) subscribed();
}, (error) => {
  print({ event: "error", error: typeof error === "string" ? error : error.headers && error.headers.message });
  process.exit(1);
});
