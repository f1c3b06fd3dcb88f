// The browser chat client's entry point. It speaks only the public HTTP API and the STOMP
// destinations, authenticated by the HttpOnly cookie. User text reaches the page through
// textContent only.
import { bindMessageActions } from "./actions.js";
import { bindConversation } from "./conversation.js";
import { bindNewRoom } from "./newroom.js";
import { bindProfile } from "./profile.js";
import { bindSearch } from "./search.js";
import { bindSession, resumeSession } from "./session.js";

function bindDialogs() {
  for (const button of document.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
}

function boot() {
  bindSession();
  bindConversation();
  bindMessageActions();
  bindSearch();
  bindNewRoom();
  bindProfile();
  bindDialogs();
  resumeSession();
}

document.addEventListener("DOMContentLoaded", boot);
