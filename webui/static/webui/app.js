// The browser chat client. It speaks only the public HTTP API and the STOMP destinations,
// authenticated by the HttpOnly cookie. User text reaches the page through textContent only.
"use strict";

(function () {
  const PAGE_SIZE = 20;
  const TYPING_RESEND_MS = 1500;
  const TYPING_FORGET_MS = 6000;
  const PRESENCE_RENEW_MS = 60000;
  const SESSION_ENDED = ["Authentication required", "Authentication failed", "Session expired", "Session ended"];

  const $ = (id) => document.getElementById(id);
  const state = {
    me: null,
    rooms: new Map(),
    people: new Map(),
    room: null,
    stomp: null,
    everConnected: false,
    presenceTimer: null,
    chosen: new Map(),
    pendingSend: null,
  };

  // ---------------------------------------------------------------- DOM helpers

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function avatar(name, color) {
    const node = element("span", "avatar", (name || "?").trim().charAt(0).toUpperCase() || "?");
    node.setAttribute("aria-hidden", "true");
    node.style.backgroundColor = color || "";
    return node;
  }

  let statusTimer = null;
  function showStatus(text) {
    const status = $("status");
    status.textContent = text;
    status.hidden = false;
    clearTimeout(statusTimer);
    statusTimer = setTimeout(() => (status.hidden = true), 6000);
  }

  function timeOf(iso) {
    const date = new Date(iso);
    const today = new Date().toDateString() === date.toDateString();
    return today
      ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
      : date.toLocaleDateString([], { day: "numeric", month: "short" });
  }

  function randomKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // ---------------------------------------------------------------- HTTP API

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  function errorText(payload, status) {
    if (payload && typeof payload === "object") {
      if (payload.detail) return String(payload.detail);
      if (payload.success === false && payload.message) return String(payload.message);
      if (payload.details) return String(payload.details);
      if (payload.message) return String(payload.message);
    }
    return "The server answered with status " + status + ".";
  }

  async function api(method, path, body) {
    const options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      throw new ApiError("The server cannot be reached. Check the connection and try again.", 0);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (error) {
      payload = null;
    }
    if (!response.ok || (payload && payload.success === false)) {
      if (response.status === 401 && state.me && !path.startsWith("/auth/")) {
        endSession("Your session has ended. Please log in again.");
      }
      throw new ApiError(errorText(payload, response.status), response.status);
    }
    return payload;
  }

  function person(customerId) {
    if (!state.people.has(customerId)) {
      const found = api("GET", "/customer/info/customerId/" + customerId)
        .then((answer) => answer.data)
        .catch(() => ({ customerId: customerId, fullName: "Customer " + customerId, avatarColor: null }));
      state.people.set(customerId, found);
    }
    return state.people.get(customerId);
  }

  function nameOf(customerId, known) {
    if (state.me && customerId === state.me.customerId) return "You";
    return known.get(customerId) || "Customer " + customerId;
  }

  // ---------------------------------------------------------------- session

  async function boot() {
    bindEvents();
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
    state.stomp = new window.StompClient(scheme + location.host + "/ws/chat", {
      onConnected: connected,
      onDisconnected: disconnected,
      onError: stompError,
    });
    state.stomp.subscribe("rooms", "/user/topic/rooms", roomUpdated);
    state.stomp.subscribe("read-status", "/user/topic/readStatus", readStatusUpdated);
    $("connection").textContent = "Connecting…";
    state.stomp.start();
    state.presenceTimer = setInterval(() => state.stomp.send("/app/extendOnline", ""), PRESENCE_RENEW_MS);
    loadRooms();
  }

  function endSession(message) {
    if (state.stomp) state.stomp.stop();
    clearInterval(state.presenceTimer);
    Object.assign(state, { me: null, room: null, stomp: null, everConnected: false, pendingSend: null });
    state.rooms.clear();
    state.people.clear();
    $("room-list").replaceChildren();
    $("message-list").replaceChildren();
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
    if (state.everConnected) {
      // Room views that changed while the socket was down: the list is fetched again; the
      // open room's messages come back through since-message-id on its re-subscription.
      loadRooms();
      if (state.room) loadRoomStatus(state.room);
    }
    state.everConnected = true;
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

  function renderMe() {
    $("me-name").textContent = state.me.fullName;
    $("me-avatar").replaceWith(Object.assign(avatar(state.me.fullName, state.me.avatarColor), { id: "me-avatar" }));
  }

  // ---------------------------------------------------------------- rooms

  async function loadRooms() {
    try {
      const answer = await api("GET", "/query/rooms");
      state.rooms = new Map(answer.data.map((view) => [view.roomId, view]));
      renderRooms();
    } catch (error) {
      showStatus(error.message);
    }
  }

  const lastId = (view) => (view && view.lastMessage ? view.lastMessage.messageId : 0);

  function roomUpdated(view) {
    const known = state.rooms.get(view.roomId);
    if (known && lastId(known) > lastId(view)) return; // an older view overtaken by a fetch
    // Room views and read statuses travel on different topics, so a view flagging the open
    // room unread may arrive after the read marker that cleared it.
    const room = state.room && state.room.id === view.roomId ? state.room : null;
    if (room && lastId(view) <= (room.markers.get(state.me.customerId) || 0)) {
      view.unreadStatus = Object.assign({}, view.unreadStatus, { [state.me.customerId]: false });
    }
    state.rooms.set(view.roomId, view);
    renderRooms();
    if (state.room && state.room.id === view.roomId) {
      state.room.participantIds = view.participantIds;
      $("room-name").textContent = view.roomName;
    }
  }

  function readStatusUpdated(event) {
    const view = state.rooms.get(event.roomId);
    if (!view) return;
    view.unreadStatus = Object.assign({}, view.unreadStatus, { [event.customerId]: event.isUnread });
    renderRooms();
  }

  function renderRooms() {
    const focused = document.activeElement && document.activeElement.dataset.roomId;
    const views = Array.from(state.rooms.values()).sort((a, b) => new Date(b.updatedAt) - new Date(a.updatedAt));
    const items = views.map(roomItem);
    $("room-list").replaceChildren(...items);
    $("no-rooms").hidden = views.length > 0;
    if (focused) {
      const again = $("room-list").querySelector('[data-room-id="' + focused + '"]');
      if (again) again.focus();
    }
  }

  function roomItem(view) {
    const unread = Boolean(view.unreadStatus && view.unreadStatus[state.me.customerId]);
    const button = element("button", "room-item" + (unread ? " unread" : ""));
    button.type = "button";
    button.dataset.roomId = String(view.roomId);
    if (state.room && state.room.id === view.roomId) button.setAttribute("aria-current", "true");
    const text = element("span", "room-text");
    const top = element("span", "room-top");
    top.append(element("span", "room-name", view.roomName));
    if (view.lastMessage) top.append(element("time", "muted", timeOf(view.lastMessage.sentAt)));
    const last = view.lastMessage;
    const preview = last ? (last.senderId === state.me.customerId ? "You: " : "") + last.content : "No messages yet";
    text.append(top, element("span", "room-last muted", preview));
    button.append(avatar(view.roomName, null), text);
    if (unread) {
      const dot = element("span", "dot");
      dot.setAttribute("aria-label", "unread");
      dot.setAttribute("role", "img");
      button.append(dot);
    }
    button.addEventListener("click", () => openRoom(view.roomId));
    const item = element("li");
    item.append(button);
    return item;
  }

  // ---------------------------------------------------------------- one room

  function showRoomPane(open) {
    $("chat-view").classList.toggle("room-open", open);
    $("composer").hidden = !open;
    $("messages").hidden = !open;
    $("room-placeholder").hidden = open;
  }

  function leaveRoom() {
    const room = state.room;
    if (!room) return;
    stopTyping();
    for (const topic of ["message", "readMarkers", "onlineStatus", "typing"]) {
      state.stomp.unsubscribe(topic + "-" + room.id);
    }
    clearInterval(room.typingSweep);
    state.room = null;
  }

  async function openRoom(roomId) {
    leaveRoom();
    const view = state.rooms.get(roomId);
    const room = {
      id: roomId,
      order: [],
      senders: new Map(),
      newestId: 0,
      exhausted: false,
      loading: false,
      markers: new Map(),
      online: new Map(),
      typing: new Map(),
      names: new Map(),
      participantIds: view ? view.participantIds : [],
    };
    state.room = room;
    state.pendingSend = null;
    $("room-name").textContent = view ? view.roomName : "Room " + roomId;
    $("room-online").textContent = "";
    $("typing").textContent = "";
    $("message-list").replaceChildren();
    $("composer-input").value = "";
    renderHistoryState(room);
    renderRooms();
    showRoomPane(true);
    try {
      const answer = await api("GET", "/query/message/roomId/" + roomId);
      if (state.room !== room) return;
      addMessages(room, answer.data);
      room.exhausted = answer.data.length < PAGE_SIZE;
    } catch (error) {
      showStatus(error.message);
      return;
    }
    subscribeRoom(room);
    loadNames(room);
    loadRoomStatus(room);
    scrollToEnd();
    renderHistoryState(room);
    $("composer-input").focus();
    await fillScreen(room);
    markRead(room);
  }

  function subscribeRoom(room) {
    const id = room.id;
    state.stomp.subscribe("message-" + id, "/topic/message/roomId/" + id, (m) => messageArrived(room, m), () => ({
      "since-message-id": String(room.newestId),
    }));
    state.stomp.subscribe("readMarkers-" + id, "/topic/readMarkers/roomId/" + id, (marker) => {
      room.markers.set(marker.customerId, Math.max(room.markers.get(marker.customerId) || 0, marker.lastReadMessageId));
      renderSeenBy(room);
    });
    state.stomp.subscribe("onlineStatus-" + id, "/topic/onlineStatus/roomId/" + id, (status) => {
      room.online.set(status.customerId, status.online);
      renderOnline(room);
    });
    state.stomp.subscribe("typing-" + id, "/topic/typing/roomId/" + id, (event) => typingChanged(room, event));
    room.typingSweep = setInterval(() => sweepTyping(room), 1000);
  }

  async function loadNames(room) {
    await Promise.all(
      room.participantIds.map(async (customerId) => {
        const found = await person(customerId);
        room.names.set(customerId, found.fullName);
      }),
    );
    renderSeenBy(room);
    renderTyping(room);
  }

  async function loadRoomStatus(room) {
    try {
      const [online, markers] = await Promise.all([
        api("GET", "/query/onlineStatus/roomId/" + room.id),
        api("GET", "/query/readMarkers/roomId/" + room.id),
      ]);
      for (const status of online.data) room.online.set(status.customerId, status.online);
      for (const marker of markers.data) {
        const known = room.markers.get(marker.customerId) || 0;
        room.markers.set(marker.customerId, Math.max(known, marker.lastReadMessageId || 0));
      }
      renderOnline(room);
      renderSeenBy(room);
    } catch (error) {
      showStatus(error.message);
    }
  }

  function renderOnline(room) {
    if (state.room !== room) return;
    const total = room.participantIds.length || room.online.size;
    const online = Array.from(room.online.values()).filter(Boolean).length;
    $("room-online").textContent = online + " of " + total + " online";
  }

  // ---------------------------------------------------------------- messages

  function messageArrived(room, message) {
    if (state.room !== room) return;
    const list = $("messages");
    const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    addMessages(room, [message]);
    showInList(message);
    room.typing.delete(message.senderId);
    renderTyping(room);
    if (atEnd || message.senderId === state.me.customerId) scrollToEnd();
    markRead(room);
  }

  // Messages are kept once each, in messageId order, however and how often they arrive.
  function addMessages(room, messages) {
    const list = $("message-list");
    for (const message of messages) {
      if (room.order.includes(message.messageId)) continue;
      let at = room.order.length;
      while (at > 0 && room.order[at - 1] > message.messageId) at -= 1;
      const node = messageItem(message);
      list.insertBefore(node, list.children[at] || null);
      room.order.splice(at, 0, message.messageId);
      room.senders.set(message.messageId, message.senderId);
      room.newestId = Math.max(room.newestId, message.messageId);
    }
    renderSeenBy(room);
  }

  // The open room's entry in the list shows what the conversation shows, push or no push.
  function showInList(message) {
    const view = state.rooms.get(message.roomId);
    if (!view || lastId(view) >= message.messageId) return;
    const { messageId, senderId, content, sentAt } = message;
    view.lastMessage = { messageId: messageId, senderId: senderId, content: content, sentAt: sentAt };
    view.updatedAt = sentAt;
    renderRooms();
  }

  function messageItem(message) {
    const mine = message.senderId === state.me.customerId;
    const item = element("li", "message" + (mine ? " mine" : ""));
    item.dataset.messageId = String(message.messageId);
    const meta = element("div", "meta");
    meta.append(element("span", "sender", mine ? "You" : message.senderFullName));
    const time = element("time", "muted", timeOf(message.sentAt));
    time.dateTime = message.sentAt;
    meta.append(time);
    item.append(meta, element("div", "content", message.content), element("div", "seen muted"));
    return item;
  }

  function renderSeenBy(room) {
    if (state.room !== room) return;
    const seenAt = new Map();
    for (const [customerId, lastRead] of room.markers) {
      if (customerId === state.me.customerId || !lastRead) continue;
      // Under the newest message they have read that is not their own.
      let shown = null;
      for (const id of room.order) if (id <= lastRead && room.senders.get(id) !== customerId) shown = id;
      if (shown === null) continue;
      if (!seenAt.has(shown)) seenAt.set(shown, []);
      seenAt.get(shown).push(nameOf(customerId, room.names));
    }
    for (const node of $("message-list").children) {
      const names = seenAt.get(Number(node.dataset.messageId));
      node.querySelector(".seen").textContent = names ? "Seen by " + names.join(", ") : "";
    }
  }

  async function loadOlder(room) {
    if (room.loading || room.exhausted || !room.order.length) return;
    room.loading = true;
    renderHistoryState(room);
    const list = $("messages");
    try {
      const answer = await api("GET", "/query/message/roomId/" + room.id + "/index/" + room.order[0]);
      if (state.room !== room) return;
      const before = list.scrollHeight;
      addMessages(room, answer.data);
      list.scrollTop += list.scrollHeight - before;
      room.exhausted = answer.data.length < PAGE_SIZE;
    } catch (error) {
      showStatus(error.message);
    } finally {
      room.loading = false;
      renderHistoryState(room);
    }
  }

  // Without a scroll bar there is no scrolling up: load older pages until there is one.
  async function fillScreen(room) {
    const list = $("messages");
    while (state.room === room && !room.exhausted && list.scrollHeight <= list.clientHeight) {
      await loadOlder(room);
      scrollToEnd();
    }
  }

  function renderHistoryState(room) {
    const button = $("older-button");
    button.disabled = room.exhausted || room.loading;
    button.textContent = room.loading
      ? "Loading older messages…"
      : room.exhausted
        ? "This is the beginning of the conversation."
        : "Load older messages";
  }

  function scrollToEnd() {
    const list = $("messages");
    list.scrollTop = list.scrollHeight;
  }

  async function markRead(room) {
    if (state.room !== room || document.visibilityState !== "visible" || !room.newestId) return;
    const mine = room.markers.get(state.me.customerId) || 0;
    if (room.newestId <= mine) return;
    room.markers.set(state.me.customerId, room.newestId);
    try {
      await api("POST", "/command/read", { roomId: room.id, messageId: room.newestId });
    } catch (error) {
      room.markers.set(state.me.customerId, mine);
      showStatus(error.message);
    }
  }

  async function sendMessage(event) {
    event.preventDefault();
    const room = state.room;
    const input = $("composer-input");
    const content = input.value;
    if (!room || !content.trim()) return;
    // The same text sent again after a failure reuses its key, so it is stored once.
    if (!state.pendingSend || state.pendingSend.content !== content || state.pendingSend.roomId !== room.id) {
      state.pendingSend = { content: content, roomId: room.id, key: randomKey() };
    }
    stopTyping();
    try {
      const answer = await api("POST", "/command/message", {
        roomId: room.id,
        content: content,
        clientMessageId: state.pendingSend.key,
      });
      state.pendingSend = null;
      if (input.value === content) input.value = "";
      const sent = answer.data;
      messageArrived(room, {
        messageId: sent.messageId,
        roomId: room.id,
        senderId: state.me.customerId,
        senderFullName: state.me.fullName,
        content: content,
        sentAt: sent.sentAt,
      });
    } catch (error) {
      showStatus(error.message);
    }
  }

  // ---------------------------------------------------------------- typing

  let typingSentAt = 0;
  let typingRoom = null;

  function composerInput() {
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

  function stopTyping() {
    if (typingRoom !== null && state.stomp) {
      state.stomp.send("/app/typing", JSON.stringify({ roomId: typingRoom, isTyping: 0 }));
    }
    typingRoom = null;
    typingSentAt = 0;
  }

  function typingChanged(room, event) {
    if (event.customerId === state.me.customerId) return;
    if (event.typing) room.typing.set(event.customerId, Date.now());
    else room.typing.delete(event.customerId);
    renderTyping(room);
  }

  // A stop that never arrived (a dropped connection) must not leave someone typing forever.
  function sweepTyping(room) {
    let changed = false;
    for (const [customerId, since] of room.typing) {
      if (Date.now() - since > TYPING_FORGET_MS) changed = room.typing.delete(customerId) || changed;
    }
    if (changed) renderTyping(room);
  }

  function renderTyping(room) {
    if (state.room !== room) return;
    const names = Array.from(room.typing.keys(), (id) => nameOf(id, room.names));
    $("typing").textContent = names.length
      ? names.join(", ") + (names.length === 1 ? " is typing…" : " are typing…")
      : "";
  }

  // ---------------------------------------------------------------- new room

  let searchTimer = null;
  let searchSerial = 0;

  function openNewRoom() {
    state.chosen.clear();
    $("people-search").value = "";
    $("new-room-name").value = "";
    $("new-room-error").textContent = "";
    $("people-results").replaceChildren();
    renderChosen();
    $("new-room-dialog").showModal();
    $("people-search").focus();
  }

  function searchPeople() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 250);
  }

  async function runSearch() {
    const text = $("people-search").value.trim();
    const serial = ++searchSerial;
    const results = $("people-results");
    if (text.length < 3) {
      results.replaceChildren();
      return;
    }
    // Phone numbers are stored as digits (and a leading +), so separators are dropped.
    const byPhone = /^\+?[\d\s\-().]+$/.test(text);
    const query = byPhone ? text.replace(/[\s\-().]/g, "") : text;
    const path = (byPhone ? "/customer/info/phoneNumber/" : "/customer/info/fullName/") + encodeURIComponent(query);
    try {
      const answer = await api("GET", path);
      if (serial !== searchSerial) return;
      const people = answer.data.filter((p) => p.customerId !== state.me.customerId);
      $("new-room-error").textContent = people.length ? "" : "Nobody found for “" + text + "”.";
      results.replaceChildren(...people.map(resultItem));
    } catch (error) {
      if (serial === searchSerial) $("new-room-error").textContent = error.message;
    }
  }

  function resultItem(found) {
    const button = element("button", "person");
    button.type = "button";
    const label = found.fullName + (found.phoneNumber ? " · " + found.phoneNumber : "");
    button.append(avatar(found.fullName, found.avatarColor), element("span", "", label));
    button.setAttribute("aria-label", "Add " + label);
    button.addEventListener("click", () => {
      state.chosen.set(found.customerId, found);
      renderChosen();
      $("people-search").focus();
    });
    const item = element("li");
    item.append(button);
    return item;
  }

  function renderChosen() {
    const items = Array.from(state.chosen.values(), (found) => {
      const item = element("li", "chip");
      const remove = element("button", "quiet", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove " + found.fullName);
      remove.addEventListener("click", () => {
        state.chosen.delete(found.customerId);
        renderChosen();
      });
      item.append(element("span", "", found.fullName), remove);
      return item;
    });
    $("people-chosen").replaceChildren(...items);
    const names = Array.from(state.chosen.values(), (p) => p.fullName);
    $("new-room-name").placeholder = names.length ? names.join(", ").slice(0, 100) : "Room name";
  }

  async function createRoom(event) {
    event.preventDefault();
    if (!state.chosen.size) {
      $("new-room-error").textContent = "Choose at least one person to talk to.";
      return;
    }
    const roomName = $("new-room-name").value.trim() || $("new-room-name").placeholder;
    try {
      const answer = await api("POST", "/command/room", {
        roomName: roomName,
        targetCustomerIds: Array.from(state.chosen.keys()),
      });
      $("new-room-dialog").close();
      await loadRooms();
      openRoom(answer.data);
    } catch (error) {
      $("new-room-error").textContent = error.message;
    }
  }

  // ---------------------------------------------------------------- profile

  function openProfile() {
    $("profile-name").value = state.me.fullName || "";
    $("profile-email").value = state.me.email || "";
    $("profile-phone").value = state.me.phoneNumber || "";
    $("profile-color").value = (state.me.avatarColor || "#4caf50").toLowerCase();
    $("profile-error").textContent = "";
    $("profile-dialog").showModal();
    $("profile-name").focus();
  }

  async function saveProfile(event) {
    event.preventDefault();
    try {
      const answer = await api("POST", "/customer/info", {
        fullName: $("profile-name").value,
        email: $("profile-email").value,
        phoneNumber: $("profile-phone").value,
        avatarColor: $("profile-color").value,
      });
      state.me = answer.data;
      state.people.set(state.me.customerId, Promise.resolve(state.me));
      renderMe();
      $("profile-dialog").close();
      showStatus("Profile saved.");
    } catch (error) {
      $("profile-error").textContent = error.message;
    }
  }

  // ---------------------------------------------------------------- wiring

  function bindEvents() {
    $("login-form").addEventListener("submit", logIn);
    $("logout-button").addEventListener("click", logOut);
    $("new-room-button").addEventListener("click", openNewRoom);
    $("profile-button").addEventListener("click", openProfile);
    $("people-search").addEventListener("input", searchPeople);
    $("people-search").addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        clearTimeout(searchTimer);
        runSearch();
      }
    });
    $("new-room-form").addEventListener("submit", createRoom);
    $("profile-form").addEventListener("submit", saveProfile);
    for (const button of document.querySelectorAll("[data-close]")) {
      button.addEventListener("click", () => button.closest("dialog").close());
    }
    $("composer").addEventListener("submit", sendMessage);
    $("composer-input").addEventListener("input", composerInput);
    $("composer-input").addEventListener("blur", stopTyping);
    $("composer-input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    $("messages").addEventListener("scroll", () => {
      if (state.room && $("messages").scrollTop < 80) loadOlder(state.room);
    });
    $("older-button").addEventListener("click", () => state.room && loadOlder(state.room));
    $("back-button").addEventListener("click", () => {
      leaveRoom();
      showRoomPane(false);
      renderRooms();
    });
    document.addEventListener("visibilitychange", () => state.room && markRead(state.room));
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
