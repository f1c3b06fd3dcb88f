// What several modules share: who is logged in, their rooms, the people met so far, the open
// room and the STOMP client. Everything here lasts one session; logging out resets it.
export const state = {
  me: null,
  rooms: new Map(),
  people: new Map(),
  room: null,
  stomp: null,
  pendingSend: null,
};
