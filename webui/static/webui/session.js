// Logging in and out, and the STOMP connection that lasts as long as the session.
import { api, onSessionLost } from "./api.js";
import { loadRoomStatus, showRoomPane } from "./conversation.js";
import { $, showStatus } from "./dom.js";
import { refreshShown } from "./messages.js";
import { renderMe } from "./profile.js";
import { closeHeader } from "./roomheader.js";
import { loadRooms, readStatusUpdated, roomRemoved, roomUpdated } from "./rooms.js";
import { resetSearch } from "./search.js";
import { state } from "./state.js";
import { StompClient } from "./stomp.js";

const PRESENCE_RENEW_MS = 60000;
const SESSION_ENDED = ["Authentication required", "Authentication failed", "Session expired", "Session ended"];

let everConnected = false;
let presenceTimer = null;

// The cookie may still hold a session from an earlier visit.
export async function resumeSession() {
  try {
    const answer = await api("GET", "/customer/info");
    startSession(answer.data);
  } catch (error) {
    showLogin(error.status === 401 ? "" : error.message);
  }
}

function showLogin(message) {
  $("chat-view").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = message || "";
  $("login-username").focus();
}

async function logIn(event) {
  event.preventDefault();
  const username = $("login-username").value;
  const password = $("login-password").value;
  if (!username || !password) {
    $("login-error").textContent = "Enter your username and password.";
    return;
  }
  try {
    await api("POST", "/auth/login", { username: username, password: password });
    const answer = await api("GET", "/customer/info");
    $("login-password").value = "";
    startSession(answer.data);
  } catch (error) {
    $("login-error").textContent = error.message;
  }
}

function startSession(me) {
  state.me = me;
  state.people.set(me.customerId, Promise.resolve(me));
  renderMe();
  $("login-view").hidden = true;
  $("chat-view").hidden = false;
  showRoomPane(false);
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  state.stomp = new StompClient(scheme + location.host + "/ws/chat", {
    onConnected: connected,
    onDisconnected: disconnected,
    onError: stompError,
  });
  state.stomp.subscribe("rooms", "/user/topic/rooms", roomUpdated);
  state.stomp.subscribe("read-status", "/user/topic/readStatus", readStatusUpdated);
  state.stomp.subscribe("rooms-removed", "/user/topic/rooms-removed", (event) => roomRemoved(event));
  $("connection").textContent = "Connecting…";
  state.stomp.start();
  presenceTimer = setInterval(() => state.stomp.send("/app/extendOnline", ""), PRESENCE_RENEW_MS);
  loadRooms();
}

function endSession(message) {
  if (state.stomp) state.stomp.stop();
  clearInterval(presenceTimer);
  Object.assign(state, { me: null, room: null, stomp: null, pendingSend: null });
  everConnected = false;
  state.rooms.clear();
  state.people.clear();
  $("room-list").replaceChildren();
  $("message-list").replaceChildren();
  closeHeader();
  resetSearch();
  showLogin(message);
}

async function logOut() {
  try {
    await api("POST", "/auth/logout");
  } catch (error) {
    showStatus(error.message);
  }
  endSession("You are logged out.");
}

function connected() {
  $("connection").textContent = "";
  // The list as it is now that its updates are subscribed to: the first one, fetched at login
  // beside the connection's start, misses any update pushed in between; after a reconnection,
  // the room views that changed while the socket was down.
  loadRooms();
  if (everConnected) {
    // The open room's new messages come back through since-message-id on its
    // re-subscription, and the changes to those already shown with the pages fetched again.
    if (state.room) {
      loadRoomStatus(state.room);
      refreshShown(state.room);
    }
  }
  everConnected = true;
}

function disconnected(attempt, delayMs) {
  const seconds = Math.max(1, Math.round(delayMs / 1000));
  $("connection").textContent = "Connection lost. Reconnecting in " + seconds + " s (attempt " + attempt + ")…";
}

function stompError(message, details) {
  if (SESSION_ENDED.includes(message)) {
    endSession("Your session has ended. Please log in again.");
    return;
  }
  showStatus(details ? message + ": " + details : message);
}

export function bindSession() {
  onSessionLost(endSession);
  $("login-form").addEventListener("submit", logIn);
  $("logout-button").addEventListener("click", logOut);
}
