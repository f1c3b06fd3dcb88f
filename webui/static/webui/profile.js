// The logged-in person's own profile: shown in the sidebar's header, edited in a dialog.
import { api } from "./api.js";
import { $, avatar, showStatus } from "./dom.js";
import { state } from "./state.js";

export function renderMe() {
  $("me-name").textContent = state.me.fullName;
  $("me-avatar").replaceWith(Object.assign(avatar(state.me.fullName, state.me.avatarColor), { id: "me-avatar" }));
}

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

export function bindProfile() {
  $("profile-button").addEventListener("click", openProfile);
  $("profile-form").addEventListener("submit", saveProfile);
}
