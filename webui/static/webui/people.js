// Who is who: other customers' profiles, fetched once per session and shared by every room.
import { api } from "./api.js";
import { state } from "./state.js";

export function person(customerId) {
  if (!state.people.has(customerId)) {
    const found = api("GET", "/customer/info/customerId/" + customerId)
      .then((answer) => answer.data)
      .catch(() => ({ customerId: customerId, fullName: "Customer " + customerId, avatarColor: null }));
    state.people.set(customerId, found);
  }
  return state.people.get(customerId);
}

export function nameOf(customerId, known) {
  if (state.me && customerId === state.me.customerId) return "You";
  return known.get(customerId) || "Customer " + customerId;
}
