// "… is typing": our own typing state, sent at most every TYPING_RESEND_MS, and everyone
// else's, shown under the open room's messages.
import { $ } from "./dom.js";
import { nameOf } from "./people.js";
import { state } from "./state.js";

const TYPING_RESEND_MS = 1500;
const TYPING_FORGET_MS = 6000;

let typingSentAt = 0;
let typingRoom = null;

export function composerInput() {
  const room = state.room;
  if (!room) return;
  if (!$("composer-input").value) {
    stopTyping();
  } else if (Date.now() - typingSentAt > TYPING_RESEND_MS) {
    if (state.stomp.send("/app/typing", JSON.stringify({ roomId: room.id, isTyping: 1 }))) {
      typingSentAt = Date.now();
      typingRoom = room.id;
    }
  }
}

export function stopTyping() {
  if (typingRoom !== null && state.stomp) {
    state.stomp.send("/app/typing", JSON.stringify({ roomId: typingRoom, isTyping: 0 }));
  }
  typingRoom = null;
  typingSentAt = 0;
}

// Typing into a room we are no longer in is refused: nothing is sent.
export function forgetTyping() {
  typingRoom = null;
  typingSentAt = 0;
}

export function typingChanged(room, event) {
  if (event.customerId === state.me.customerId) return;
  if (event.typing) room.typing.set(event.customerId, Date.now());
  else room.typing.delete(event.customerId);
  renderTyping(room);
}

// A stop that never arrived (a dropped connection) must not leave someone typing forever.
export function sweepTyping(room) {
  let changed = false;
  for (const [customerId, since] of room.typing) {
    if (Date.now() - since > TYPING_FORGET_MS) changed = room.typing.delete(customerId) || changed;
  }
  if (changed) renderTyping(room);
}

export function renderTyping(room) {
  if (state.room !== room) return;
  const names = Array.from(room.typing.keys(), (id) => nameOf(id, room.names));
  $("typing").textContent = names.length
    ? names.join(", ") + (names.length === 1 ? " is typing…" : " are typing…")
    : "";
}
