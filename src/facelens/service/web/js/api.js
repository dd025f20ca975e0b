// Calls to the facelens REST API. The API key travels in the HttpOnly cookie that
// POST /api/session sets, so every call here (and every <img>/download link) is authenticated.

/** An error answer of the API: {"error": {"code", "message", "details"?}}. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const listeners = { unauthorised: [] };

/** Run `callback` whenever a call is answered 401 (the key was revoked or the session ended). */
export function onUnauthorised(callback) {
  listeners.unauthorised.push(callback);
}

/**
 * One API call. `json` is sent as a JSON body, `form` (a FormData) as multipart.
 * Resolves to the parsed JSON answer; rejects with ApiError on any error answer.
 */
export async function api(method, path, options = {}) {
  return (await call(method, path, options)).body;
}

/** A GET of a paged list: {items, total} (the total from the X-Total-Count header). */
export async function apiPage(path) {
  const { body, headers } = await call("GET", path, {});
  return { items: body, total: Number(headers.get("x-total-count") || body.length) };
}

async function call(method, path, { json, form } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "network", `the server cannot be reached (${error.message})`);
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("application/json") ? await response.json() : null;
  if (!response.ok) {
    const error = (body && body.error) || {
      code: `http_${response.status}`,
      message: response.statusText || `HTTP ${response.status}`,
    };
    if (response.status === 401 && path !== "/api/session") {
      listeners.unauthorised.forEach((callback) => callback(error.message));
    }
    throw new ApiError(response.status, error.code, error.message, error.details);
  }
  return { body, headers: response.headers };
}

/** A FormData from [name, value] pairs; File values keep their file names. */
export function formData(entries) {
  const form = new FormData();
  for (const [name, value] of entries) {
    if (value instanceof File) form.append(name, value, value.name);
    else form.append(name, value);
  }
  return form;
}

/** The URL of a person's stored face crop (JPEG). */
export function cropUrl(name, templateId) {
  return `/api/people/${encodeURIComponent(name)}/photos/${templateId}`;
}

/** The URL of a library item's photo or video (GET /api/library/items/{id}/media). */
export function mediaUrl(itemId) {
  return `/api/library/items/${itemId}/media`;
}
