// The JSON API of the wallet service: one fetch wrapper that sends the API key and turns every
// problem (RFC 9457) into an ApiError with a readable message, and idempotency keys for writes.

const KEY_STORAGE = "wallet.console.apiKey";

// Codes whose answer decided nothing: the same idempotency key may be sent again.
const UNDECIDED = new Set(["network_error", "unavailable", "overloaded"]);

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.status = status;
    this.code = problem.code ?? "http_error";
    this.title = problem.title;
    this.detail = problem.detail ?? "";
    this.problem = problem; // its extensions too, say a 410's oldest_position
  }
}

// The key lives in sessionStorage only: it is gone when the tab closes.
export const session = {
  get key() {
    return sessionStorage.getItem(KEY_STORAGE);
  },
  signIn(key) {
    sessionStorage.setItem(KEY_STORAGE, key);
  },
  signOut() {
    sessionStorage.removeItem(KEY_STORAGE);
  },
};

export async function request(method, path, { query, body, idempotencyKey } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  if (session.key) headers.Authorization = `Bearer ${session.key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  let response;
  try {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    response = await fetch(url, { method, headers, body: payload });
  } catch (error) {
    throw new ApiError(0, {
      title: "Service unreachable",
      detail: `the request did not reach the service (${error.message})`,
      code: "network_error",
    });
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, problemOf(response, data));
  return data;
}

function problemOf(response, data) {
  if (data && typeof data.title === "string") return data;
  return {
    title: `HTTP ${response.status}`,
    detail: response.statusText || "the service answered an error without details",
  };
}

// Works outside secure contexts too, unlike crypto.randomUUID().
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// One write behind one confirmation dialog. Every click sends the same key, so a double click
// or a retry after a lost answer moves nothing twice. Once the ledger has decided an attempt
// (say, refused it), the next attempt is a new one and takes a new key.
export class IdempotentWrite {
  constructor(method, path) {
    this.method = method;
    this.path = path;
    this.key = newIdempotencyKey();
  }

  async send(body) {
    try {
      return await request(this.method, this.path, { body, idempotencyKey: this.key });
    } catch (error) {
      if (!UNDECIDED.has(error.code)) this.key = newIdempotencyKey();
      throw error;
    }
  }
}

// A write that sets a state (an endpoint's status): sent twice, it sets the same state, so it
// needs no idempotency key.
export class StateWrite {
  constructor(method, path) {
    this.method = method;
    this.path = path;
  }

  send(body) {
    return request(this.method, this.path, { body });
  }
}

const part = encodeURIComponent;

// The kinds a client may post, and filter a history by, are defined once, in the service: they
// are read from its OpenAPI document, once per page load.
let postableKinds = null;
export function transactionKinds() {
  postableKinds ??= request("GET", "/openapi.json").then(
    (doc) => doc.components.schemas.TransactionCreate.properties.transaction_type.enum,
  );
  return postableKinds;
}

export const api = {
  assets: () => request("GET", "/assets"),
  balances: (userId) => request("GET", `/balance/${part(userId)}`),
  lots: (userId, asset, query) => request("GET", `/balance/${part(userId)}/${part(asset)}/lots`, { query }),
  history: (userId, query) => request("GET", `/transaction/${part(userId)}/history`, { query }),
  transaction: (id) => request("GET", `/transaction/${part(id)}`),
  transactions: (query) => request("GET", "/transactions", { query }),
  pendingHolds: (userId) => request("GET", "/holds", { query: { user_id: userId, status: "pending" } }),
  supply: (code) => request("GET", `/admin/assets/${part(code)}/supply`),
  activity: (code, days) => request("GET", `/admin/assets/${part(code)}/activity`, { query: { days } }),
  limits: (query) => request("GET", "/admin/limits", { query }),
  events: (query) => request("GET", "/events", { query }),
  webhooks: () => request("GET", "/admin/webhooks"),
  webhookAttempts: (id) => request("GET", `/admin/webhooks/${part(id)}/attempts`),
  setWebhookStatus: (id) => new StateWrite("PATCH", `/admin/webhooks/${part(id)}`),
  refund: () => new IdempotentWrite("POST", "/transaction"),
  capture: (holdId) => new IdempotentWrite("POST", `/holds/${part(holdId)}/capture`),
  release: (holdId) => new IdempotentWrite("POST", `/holds/${part(holdId)}/release`),
  freezes: (userId, limit) => request("GET", `/admin/users/${part(userId)}/freezes`, { query: { limit } }),
  // Freezing what is frozen, or unfreezing what is not, changes nothing: no key needed.
  freeze: (userId) => new StateWrite("POST", `/admin/users/${part(userId)}/freeze`),
  unfreeze: (userId) => new StateWrite("POST", `/admin/users/${part(userId)}/unfreeze`),
};
