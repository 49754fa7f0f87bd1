// socks.js: the browser client of socks. A dependency-free ES module.
//
//   import { connect } from "http://127.0.0.1:8765/socks.js";
//   const socks = connect({ url, geek, chatterId, topics: ["updates"], protocol: "header" });
//   socks.on("plays-updated", () => refetchPlays());
//   socks.onState((state, info) => console.log(state, info));
//
// Messages are event keys: a JSON string body ("plays-updated") fires
// on("plays-updated"); an object body with a string "type" fires on(type).
// onMessage gets every body. States ("connecting", "open", "reconnecting",
// "resync", "failed", "closed") go to onState only: keys and states never
// share a namespace.
//
// The client keeps the connection alive ({"action":"ping"} at random
// times well under API Gateway's 10-minute idle timeout, and when the network comes back or the
// page is shown again, after a random wait of at most backoffMs so that
// tabs that hear the same event do not all ping at once, to find a link
// that died meanwhile),
// reconnects with jittered exponential backoff (which starts over only
// once a connection has stayed open maxBackoffMs; a longer wait than the
// first step is cut to a random one within it when the network comes back
// or the page is shown again), closes the connection while the page is in
// the back/forward cache or frozen and opens one when it is back, renews
// the connection
// at a random time before API Gateway's 2-hour cap (the new connection
// opens before the old one closes, and a message both carry while they overlap is delivered
// once), and gives up with "failed" after maxAttempts handshakes in a row
// that never opened (then tries once more each time the network comes
// back or the page is shown again). After every reconnect or renewal it fires
// "resync": messages published while the page was not connected are not
// replayed, so a page refetches what it shows.
//
// See socks.d.ts for the options and their defaults.

/** The subprotocol offered next to the chatter ID with protocol "header". */
export const SUBPROTOCOL = "socks";

// The topic that matches every topic: what a connect URL without topics
// follows.
const ALL = ".";

/** Defaults of the connect() options. */
export const DEFAULTS = Object.freeze({
  protocol: "query",
  maxAttempts: 10,
  heartbeatMs: 4 * 60 * 1000, // API Gateway closes a connection idle for 10 min
  maxDurationMs: 2 * 60 * 60 * 1000, // API Gateway's cap on a connection's life
  renewBeforeMs: 5 * 60 * 1000,
  backoffMs: 500,
  maxBackoffMs: 30 * 1000,
  openTimeoutMs: 15 * 1000,
  overlapMs: 2 * 1000,
});

// The options that are numbers of ms or attempts, above 0 (Infinity too).
const NUMBERS = Object.keys(DEFAULTS).filter((k) => typeof DEFAULTS[k] === "number");
// Browsers run a timer of more than 2^31-1 ms at once: longer waits are cut
// to that. So is NaN, which a random part of an option of Infinity makes
// (Infinity - Infinity, 0 * Infinity) and a browser also runs at once.
const MAX_DELAY = 2 ** 31 - 1;
const delay = (ms) => (ms <= MAX_DELAY ? ms : MAX_DELAY);

// Route replies of the gateway, answers to the client's own actions.
const REPLY_TYPES = new Set(["pong", "subscribed", "unsubscribed", "error"]);
const REPLY_FIELDS = new Set(["type", "topics", "error", "time"]);
// What begins socks serve's error reply to a frame it dropped over its
// rate (pubsub.TooManyFrames), which it sends in order whatever the
// frame's action, a ping's too.
const TOO_MANY_FRAMES = "too many frames";
// The gateway's error reply to a subscribe or unsubscribe of a connection
// whose record is gone (prune-stale, its expiry, a store wiped): the
// connection gets nothing published, so the client reconnects (see _reply).
const NOT_REGISTERED = "this connection is not registered; reconnect";
// API Gateway's own error frame, sent in place of a route's reply when the
// route's function failed ("Internal server error") or there is no route
// for the action ("Forbidden"). The local gateway sends it too.
const GATEWAY_ERROR_FIELDS = ["connectionId", "message", "requestId"];
// The close reason of a connection closed as the page went into the
// back/forward cache or was frozen (see _freeze).
const FROZEN = "page frozen";
// At most this many bodies are remembered per connection while two overlap.
const OVERLAP_MEMORY = 1000;
// At most this many subscribes and unsubscribes wait for the gateway's
// answer on a connection, as `socks listen`'s typed actions: a page that
// changes topics in task after task, against a gateway that never answers
// them, would otherwise grow the list without end (see _syncTopics).
const MAX_PENDING = 256;

/**
 * Opens a connection to a socks gateway and keeps it open.
 * @param {import("./socks.js").ConnectOptions} options
 * @returns {import("./socks.js").Client}
 */
export function connect(options) {
  return new Client(options);
}

// The gateway's rules for a topic name (docs/protocol.md). A topic it
// refuses in a connect URL refuses the whole connect, which a browser only
// sees as a handshake that never opened: refuse it here, in words.
const MAX_TOPICS = 50;
// ALONE marks a subscribe of one topic asked for again after the gateway
// refused the frame that named it with others (see _reply). A symbol: the
// frame sent is its JSON, without it.
const ALONE = Symbol("asked for alone");
const MAX_NAME_BYTES = 128;
// The gateway's rules for a name (pubsub.validateName): a lone surrogate
// (\p{Cs}) is a string that is not well-formed, which the URL or the
// frame would carry as U+FFFD, another name.
// web/testdata/names.json holds the gateway's rules, which the node
// tests check these against code point by code point.
const BAD_CHARS = /[\p{White_Space}\p{Cc}\p{Cf}\p{Cs},#]/u;

// checkName throws a TypeError for a geek or topic name the gateway would
// refuse, saying which rule it breaks.
function checkName(kind, s) {
  if (BAD_CHARS.test(s)) throw new TypeError(`socks: ${kind} ${JSON.stringify(s)} has whitespace, a control or invisible formatting character, a lone surrogate, "," or "#"`);
  if (new TextEncoder().encode(s).length > MAX_NAME_BYTES) throw new TypeError(`socks: ${kind} ${JSON.stringify(s)} is over ${MAX_NAME_BYTES} bytes`);
}

function topicList(topics) {
  if (topics == null) return [];
  const list = typeof topics === "string" ? topics.split(",") : Array.from(topics);
  const out = [];
  for (const t of list) {
    const s = String(t).trim();
    if (s === "" || out.includes(s)) continue;
    checkName("topic", s);
    out.push(s);
  }
  return out;
}

function checkCount(topics) {
  if (topics.length > MAX_TOPICS) throw new TypeError(`socks: a connection may follow at most ${MAX_TOPICS} topics, not ${topics.length}`);
}

// offline reports whether the browser knows it has no network. A
// handshake then fails for that, not for a refused chatter ID or a gateway
// that is down.
const offline = () => globalThis.navigator?.onLine === false;

// A browser is offline when no network but loopback is up (a laptop on a
// plane), and then still reaches a gateway on this machine (socks serve on
// 127.0.0.1), whose handshakes fail only for the gateway's reasons. The
// hosts are exactly those of internal/loopback.Name (localhost, also
// written "localhost.", a 127.x.x.x address, ::1, and 127.x.x.x mapped to
// IPv6), which socks serve takes as its own Host. Not a name under
// localhost ("app.localhost"): only some browsers resolve one to loopback
// themselves (others ask the system's resolver, which may ask DNS), and
// socks serve refuses it as the live page's Host, as a DNS-rebinding
// page's. A URL's hostname is lower case, its addresses canonical (127.1
// is 127.0.0.1, ::ffff:127.0.0.1 is ::ffff:7f00:1).
const LOOPBACK = /^(?:localhost|127\.\d+\.\d+\.\d+|\[::1\]|\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\])$/;
function loopback(url) {
  let host;
  try {
    host = new URL(url).hostname;
  } catch {
    return false; // the WebSocket refuses it, and the client fails
  }
  // A trailing dot only says the name is absolute.
  return LOOPBACK.test(host.endsWith("..") ? host : host.replace(/\.$/, ""));
}

// A chatter ID offered as a subprotocol must be an HTTP token, or the
// browser's WebSocket constructor throws, with the ID in its message. A
// chatter ID ("sc_" and URL-safe characters) always is one.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// The reason of an attempt made without a chatter ID.
const NO_ID = "no chatter ID";
// A chatter ID whose expiry getChatterId told is used again while it is
// valid for longer than this past openTimeoutMs: time for the handshake,
// and for a browser clock a little behind the gateway's.
const ID_MARGIN_MS = 60 * 1000;

// A number expiresAt below this is seconds since the epoch, not ms (a
// JWT's exp, a Unix time): in ms it is March 1973, in seconds the year
// 5138, so no expiry a gateway gives is on the wrong side of it either way.
const SECONDS_BELOW = 1e11;

// expiry is the time in ms of an expiresAt a getChatterId answered (an
// RFC 3339 string, ms since the epoch, or a Date), or 0 when unknown. A
// number in seconds (see SECONDS_BELOW) is taken as seconds, and
// inSeconds() is called.
function expiry(at, inSeconds) {
  let ms = at instanceof Date ? at.getTime() : typeof at === "string" ? Date.parse(at) : typeof at === "number" ? at : NaN;
  if (typeof at === "number" && ms > 0 && ms < SECONDS_BELOW) {
    ms *= 1000;
    inSeconds();
  }
  return Number.isFinite(ms) ? ms : 0;
}

// MAX_SHOWN is how much of a server's text (an error frame's) a report
// shows, in UTF-16 units: a gateway may send megabytes, which would all go
// into the console and every error tracker.
const MAX_SHOWN = 200;

// shown is a server's text s as a report shows it: cut to MAX_SHOWN and
// "…", never through a surrogate pair.
function shown(s) {
  s = String(s);
  if (s.length <= MAX_SHOWN) return s;
  let end = MAX_SHOWN;
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // the first half of a pair
  return s.slice(0, end) + "…";
}

function report(err) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(err);
  else console.error(err);
}

// isReply reports whether body looks like a gateway route reply.
function isReply(body) {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return false;
  if (!REPLY_TYPES.has(body.type)) return false;
  return Object.keys(body).every((k) => REPLY_FIELDS.has(k));
}

// isGatewayError reports whether body is API Gateway's error frame: those
// three keys, each a string, and no other.
function isGatewayError(body) {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return false;
  const keys = Object.keys(body).sort();
  return keys.length === GATEWAY_ERROR_FIELDS.length && keys.every((k, i) => k === GATEWAY_ERROR_FIELDS[i] && typeof body[k] === "string");
}

// A Conn is one WebSocket and what the client knows about it.
class Conn {
  constructor(ws) {
    this.ws = ws;
    this.opened = false;
    this.closed = false;
    this.pending = []; // actions sent and not yet answered, oldest first
    this.unansweredPings = 0;
    this.held = false; // a change of topics waits for room in pending (see _syncTopics)
    this.lagging = false; // that was said, and pending has not drained to half since (see _lag)
    this.binarySaid = false; // a binary frame came and was reported (see _receive)
    this.topics = []; // the topics asked for: at $connect, then by each subscribe and unsubscribe sent
    this.id = ""; // the chatter ID it was opened with
    this.openTimer = null; // bounds the handshake
    // While a renewal overlaps two open connections, each remembers the
    // bodies it delivered (text -> count) that its peer has not matched.
    this.peer = null;
    this.seen = null;
  }
}

// endOverlap forgets what c and its peer remembered of each other.
function endOverlap(c) {
  const p = c.peer;
  c.peer = c.seen = null;
  if (p) p.peer = p.seen = null;
}

// duplicate reports whether text, received on c while a renewal overlaps
// it with its peer, was already delivered from the peer. From the moment
// the new connection is open both receive every message published, so
// matching the two streams body by body delivers each message once, even
// when two messages have the same body. A body that reached the old
// connection before the new one opened is not remembered: it may never
// reach the new one, and remembering it could drop a later message with
// the same body. A message published during the new connection's
// handshake may therefore arrive twice; none is lost.
function duplicate(c, text) {
  const p = c.peer;
  if (!p || !c.seen || !p.seen) return false;
  const n = p.seen.get(text) || 0;
  if (n > 0) {
    if (n === 1) p.seen.delete(text);
    else p.seen.set(text, n - 1);
    return true;
  }
  if (c.seen.size < OVERLAP_MEMORY) c.seen.set(text, (c.seen.get(text) || 0) + 1);
  return false;
}

class Client {
  constructor(options) {
    // An option given as undefined is left out (TypeScript allows it), so
    // that it takes its default.
    /** @type {any} */
    const given = Object.fromEntries(Object.entries(options || {}).filter(([, v]) => v !== undefined));
    const o = { ...DEFAULTS, ...given };
    if (!o.url) throw new TypeError("socks: connect needs a url (ws:// or wss://)");
    if (!o.geek) throw new TypeError("socks: connect needs a geek");
    // Refused here, not by the gateway: a browser cannot tell its 400
    // from a gateway that is down, and would retry to the end.
    if (o.geek === ALL) throw new TypeError(`socks: geek "${ALL}" is reserved for "every topic"`);
    checkName("geek", String(o.geek));
    if (!o.chatterId && typeof o.getChatterId !== "function") {
      throw new TypeError("socks: connect needs a chatterId or a getChatterId function");
    }
    if (o.protocol !== "query" && o.protocol !== "header") {
      throw new TypeError('socks: protocol is "query" or "header"');
    }
    for (const k of NUMBERS) {
      if (typeof o[k] !== "number" || !(o[k] > 0)) {
        throw new TypeError(`socks: ${k} must be a number above 0, not ${typeof o[k] === "string" ? JSON.stringify(o[k]) : o[k]}`);
      }
    }
    this._o = o;
    this._local = loopback(o.url);
    this._WebSocket = o.WebSocket || globalThis.WebSocket;
    this._random = o.random || Math.random;
    // A chatter ID has no whitespace; one read as a line of text has.
    this._chatterId = String(o.chatterId || "").trim();
    if (o.protocol === "header" && this._chatterId && !TOKEN.test(this._chatterId)) {
      // Not echoed: it is a secret, and this message may be shown or logged.
      throw new TypeError("socks: chatterId has a character no chatter ID has (a space, a quote, a line break inside it): copy it again");
    }
    // No topics is every topic, ".", which is then a topic like any other:
    // subscribe("news") adds news to it, and unsubscribe(".") drops it.
    this._topics = topicList(o.topics);
    if (this._topics.length === 0) this._topics = [ALL];
    // The topics followed that the gateway took (see _urlTopics): those the
    // page connects with, those a connection opened with, and those a
    // subscribed reply named. Trimmed to the topics followed once each task
    // that changed them is done (see _action).
    this._accepted = new Set(this._topics);
    checkCount(this._topics);
    this._keys = new Map();
    this._messageFns = new Set();
    this._stateFns = new Set();
    this._conn = null; // the connection messages are read from
    this._next = null; // a renewal's connection, until it opens
    this._old = null; // the connection a renewal replaced, until it closes
    this._drainTimer = null;
    this._failures = 0; // handshakes in a row that never opened
    this._renewFailures = 0; // renewals in a row that never opened
    this._reconnects = 0; // attempts since a connection last stayed open maxBackoffMs
    this._retryTimer = null; // the wait before _dial
    this._retryAt = 0; // when it ends (Date.now())
    this._retryInfo = null; // what the "reconnecting" it follows said
    this._renewTimer = null;
    this._idTimers = new Set(); // each bounds a getChatterId call (a renewal's and a reconnect's may overlap)
    this._heartbeat = null;
    this._steadyTimer = null; // starts the backoff over
    this._syncQueued = false; // _action's sync waits for the task to end
    this._wakeTimer = null; // the jittered wait before a check
    this._checkTimer = null; // bounds the answer to a check's ping
    this._waitingOnline = false; // _dial waits for the online event
    this._needFreshId = !this._chatterId;
    // What is known of the chatter ID from getChatterId: until when it is
    // valid (0: unknown, so it is asked for again each time), whether a
    // connection opened with it, and whether a handshake failed after one
    // had (it may have been revoked since). See _keepId.
    this._idUntil = 0;
    this._idOpened = false;
    this._idSuspect = false;
    this._saidSeconds = false; // see _saySeconds
    this._saidClock = false; // see _sayClock
    this._frozen = false; // see _freeze
    this._epoch = 0; // counts freezes: a _dial that awaited across one stands down
    this._done = false;
    /** @type {"connecting" | "open" | "reconnecting" | "failed" | "closed"} */
    this.state = "connecting";
    // The network back, or the page shown again: dial if waiting for the
    // network, else check the connection (see _wake), or bring a reconnect
    // that waits longer than the first backoff step forward (see _hurry).
    // Every tab behind the network that came back, and every tab of a site
    // shown at once, hears it at the same moment: each dials or checks
    // after its own delay, uniform within the first backoff step, so that
    // they do not all reach the gateway at once.
    this._onOnline = () => {
      if (this._done) return;
      if (this.state === "failed") return void this._revive();
      if (!this._waitingOnline) {
        this._hurry();
        this._wake();
        return;
      }
      this._waitingOnline = false;
      this._dialIn(this._jitter());
    };
    this._onVisible = () => {
      if (this._done || globalThis.document?.visibilityState !== "visible") return;
      if (this.state === "failed") return void this._revive();
      this._hurry();
      this._wake();
    };
    // Into the back/forward cache, or frozen (a background tab): see
    // _freeze. Out of it: see _thaw. A page gets both events of a pair
    // (pagehide then freeze, resume then pageshow); the second does nothing.
    this._onPageHide = (ev) => {
      if (ev?.persisted) this._freeze();
    };
    this._onPageShow = (ev) => {
      if (this.state === "failed") this._revive();
      else if (ev?.persisted) this._thaw();
    };
    this._onFreeze = () => this._freeze();
    this._onResume = () => this._thaw();
    if (typeof globalThis.addEventListener === "function") {
      globalThis.addEventListener("online", this._onOnline);
      globalThis.addEventListener("pagehide", this._onPageHide);
      globalThis.addEventListener("pageshow", this._onPageShow);
    }
    globalThis.document?.addEventListener?.("visibilitychange", this._onVisible);
    globalThis.document?.addEventListener?.("freeze", this._onFreeze);
    globalThis.document?.addEventListener?.("resume", this._onResume);
    // Listeners added right after connect() see "connecting".
    queueMicrotask(() => {
      if (this._done) return;
      this._emitState("connecting", { attempt: 0 });
      this._dial();
    });
  }

  /** Calls fn(body) for every published body whose key is key. */
  on(key, fn) {
    let fns = this._keys.get(key);
    if (!fns) this._keys.set(key, (fns = new Set()));
    fns.add(fn);
    return () => this.off(key, fn);
  }

  off(key, fn) {
    const fns = this._keys.get(key);
    if (!fns) return;
    fns.delete(fn);
    if (fns.size === 0) this._keys.delete(key);
  }

  /** Calls fn(body) for every published body, JSON-parsed. */
  onMessage(fn) {
    this._messageFns.add(fn);
    return () => this._messageFns.delete(fn);
  }

  /** Calls fn(state, info) on every change of the connection's state. */
  onState(fn) {
    this._stateFns.add(fn);
    return () => this._stateFns.delete(fn);
  }

  /** The topics this client follows now ("." is every topic). */
  get topics() {
    return this._topics.slice();
  }

  /** Follows more topics, now and on every later connection. */
  subscribe(topics) {
    const add = topicList(topics).filter((t) => !this._topics.includes(t));
    if (add.length === 0) return;
    checkCount([...this._topics, ...add]);
    this._topics.push(...add);
    this._action();
  }

  /** Stops following topics, now and on every later connection. */
  unsubscribe(topics) {
    const drop = topicList(topics).filter((t) => this._topics.includes(t));
    if (drop.length === 0) return;
    this._topics = this._topics.filter((t) => !drop.includes(t));
    this._action();
  }

  /** Closes the connection for good. */
  close() {
    if (this._done) return;
    this._finish("closed", {});
  }

  // --- internals ---

  _emitState(state, info) {
    if (state !== "resync") this.state = state;
    for (const fn of [...this._stateFns]) {
      if (!this._stateFns.has(fn)) continue; // removed during this dispatch
      try {
        fn(state, info);
      } catch (err) {
        report(err);
      }
    }
  }

  _connectURL() {
    const u = new URL(this._o.url);
    u.searchParams.set("geek", this._o.geek);
    if (this._o.protocol === "query") u.searchParams.set("id", this._chatterId);
    else u.searchParams.delete("id");
    const topics = this._urlTopics();
    if (topics.length === 1 && topics[0] === ALL) u.searchParams.delete("topic");
    else u.searchParams.set("topic", topics.join(","));
    return u.toString();
  }

  // _urlTopics is what a connect asks for: the topics followed that the
  // gateway took (see _accepted). A topic the gateway refuses in a connect
  // URL refuses the whole connect, which a browser sees only as a
  // handshake that never opened, every one until "failed": one subscribed
  // while no connection was open is asked for by a subscribe frame once
  // the connection opens (see _syncTopics), whose refusal names it (see
  // _reply). When none of the topics followed was taken, the connect asks
  // for them all, or "." when there are none, as a connect cannot ask for
  // none (the connection then unsubscribes it as soon as it opens).
  _urlTopics() {
    const taken = this._topics.filter((t) => this._accepted.has(t));
    if (taken.length > 0) return taken;
    return this._topics.length > 0 ? this._topics.slice() : [ALL];
  }

  // _took records that c opened with its topics or that the gateway took
  // topics on c (see _accepted).
  _took(c, topics) {
    if (c !== this._conn && this._conn) return; // a replaced connection's
    for (const t of topics) if (this._topics.includes(t)) this._accepted.add(t);
  }

  // _offline reports whether the browser has no network the gateway needs
  // (see offline, loopback).
  _offline() {
    return !this._local && offline();
  }

  // _keepId reports whether the chatter ID may be used again instead of
  // asking getChatterId for another: getChatterId told when it expires,
  // it is not near that, and no handshake failed with it since one opened
  // with it. A handshake with an ID that never opened one fails alike with
  // a fresh ID (a gateway down or refusing, the geek at its connection
  // cap): asking again for each would pile up live IDs, which are capped
  // per geek, and lock the geek out.
  _keepId() {
    if (!this._chatterId || !this._idUntil || this._idSuspect) return false;
    return this._idUntil - Date.now() > this._o.openTimeoutMs + ID_MARGIN_MS;
  }

  // _failedWith records a handshake of c that never opened.
  _failedWith(c) {
    if (c.id === this._chatterId && this._idOpened) this._idSuspect = true;
  }

  // _openedWith records that c opened.
  _openedWith(c) {
    if (c.id === this._chatterId) this._idOpened = true;
  }

  // _freshId asks getChatterId for an ID, unless the one there is may be
  // used again (see _keepId). Getting it is part of the
  // handshake: one that has not answered within openTimeoutMs has failed
  // (a hung fetch must not stop the client for good), and its late answer
  // is ignored.
  async _freshId() {
    const get = this._o.getChatterId;
    if (typeof get !== "function") return;
    if (this._keepId()) return;
    const ms = this._o.openTimeoutMs;
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`socks: getChatterId did not answer within ${ms} ms`)), delay(ms));
    });
    this._idTimers.add(timer);
    try {
      const answer = await Promise.race([Promise.resolve().then(get), late]);
      const given = answer !== null && typeof answer === "object" && typeof answer.chatterId === "string";
      const got = given ? answer.chatterId : answer;
      const id = typeof got === "string" ? got.trim() : "";
      // What a failed fetch answered (an error page's text, a Response) is
      // no chatter ID: a failed handshake, asked again on the next attempt.
      // It is not shown: it may hold the ID or other secrets.
      if (id === "") throw new Error(`socks: getChatterId answered ${typeof got === "string" ? "an empty string" : typeof got}, not a chatter ID`);
      if (this._o.protocol === "header" && !TOKEN.test(id)) {
        throw new Error("socks: getChatterId answered text with characters no chatter ID has (an error page's?), not a chatter ID");
      }
      this._chatterId = id;
      this._idUntil = given ? expiry(answer.expiresAt, () => this._saySeconds(answer.expiresAt)) : 0;
      // An ID just issued is not near its expiry: one that this browser's
      // clock says is, is one the clock (or a stale answer) is wrong about.
      // Its expiry is then not used, as if a plain string had come: asked
      // again after each failed handshake and before each renewal, and
      // never dropped or left undialled for it (see _dial, _renew); the
      // gateway, by its own clock, decides.
      if (this._idUntil && this._idUntil - Date.now() <= this._o.openTimeoutMs + ID_MARGIN_MS) {
        this._sayClock(answer.expiresAt);
        this._idUntil = 0;
      }
      this._idOpened = this._idSuspect = false;
    } finally {
      clearTimeout(timer);
      this._idTimers.delete(timer);
    }
  }

  // _sayClock reports, once, an answer of getChatterId already at or near
  // its expiresAt by this browser's clock (see _freshId).
  _sayClock(at) {
    if (this._saidClock) return;
    this._saidClock = true;
    report(new Error(`socks: getChatterId answered an ID whose expiresAt (${at instanceof Date ? at.toISOString() : at}) this browser's clock (${new Date().toISOString()}) says is past or within ${Math.round((this._o.openTimeoutMs + ID_MARGIN_MS) / 1000)} s: the clock is off, or the answer stale; its expiry is not used, and it is asked for again as a plain string answer would be (said once)`));
  }

  // _saySeconds reports, once, that getChatterId gave expiresAt in
  // seconds (see expiry): it works, but a page that means ms has a bug.
  _saySeconds(at) {
    if (this._saidSeconds) return;
    this._saidSeconds = true;
    report(new Error(`socks: getChatterId's expiresAt ${at} is below ${SECONDS_BELOW}, so taken as seconds since the epoch (${new Date(at * 1000).toISOString()}): give ms, a Date or an RFC 3339 string (said once)`));
  }

  // _refused reports the error of a WebSocket constructor that refused to
  // open, and returns what it says, with the chatter ID hidden: the
  // browser's words may quote the connect URL ("Wrong url scheme for
  // WebSocket ws://...?id=sc_...", as WebKit-based runtimes such as Bun
  // say), and a page may show a reason.
  _refused(err) {
    let why = String(err && err.message);
    const id = this._chatterId;
    if (id) {
      for (const form of new Set([id, encodeURIComponent(id), new URLSearchParams({ id }).toString().slice(3)])) why = why.split(form).join("sc_(hidden)");
    }
    report(new Error(`socks: the browser would not open the WebSocket: ${why}`));
    return why;
  }

  _open() {
    const url = this._connectURL();
    const ws =
      this._o.protocol === "header"
        ? new this._WebSocket(url, [SUBPROTOCOL, this._chatterId])
        : new this._WebSocket(url);
    const c = new Conn(ws);
    c.topics = this._urlTopics();
    c.id = this._chatterId;
    return c;
  }

  // _dial opens the main connection (first connect and reconnects);
  // anyway dials while the browser says it is offline (see _awayWait).
  async _dial(anyway = false) {
    if (this._done || this._frozen) return;
    const epoch = this._epoch;
    if (!anyway && this._away()) {
      // Wait for the network (_onOnline) instead of spending attempts on
      // it, but not for ever: navigator.onLine may be wrong.
      this._waitingOnline = true;
      this._dialIn(this._awayWait(), true);
      return;
    }
    // This dial is what the online event would have begun.
    this._waitingOnline = false;
    // After a drop too, an ID getChatterId said expires (see _keepId) is
    // not used for a handshake the gateway would refuse.
    if (this._needFreshId || (this._idUntil && !this._keepId())) {
      try {
        await this._freshId();
      } catch (err) {
        report(err);
        // getChatterId failed: the ID there is is dialled with again,
        // unless it is past the expiresAt it came with, which the gateway
        // refuses (an attempt without an ID instead). One near it may
        // still open.
        if (this._idUntil && this._idUntil <= Date.now()) this._chatterId = "";
      }
      // Closed, or frozen (and maybe thawed, with a dial of its own) meanwhile.
      if (this._done || this._epoch !== epoch) return;
      this._needFreshId = false;
    }
    if (!this._chatterId) {
      // Not counted offline either: getChatterId's fetch fails there too.
      if (!this._offline()) this._failures++;
      this._needFreshId = true;
      this._retry({ code: 0, reason: NO_ID });
      return;
    }
    let c;
    try {
      c = this._open();
    } catch (err) {
      // A URL the browser refuses will not get better.
      const why = this._refused(err);
      this._finish("failed", { attempt: this._failures, reason: why });
      return;
    }
    this._conn = c;
    c.openTimer = setTimeout(() => {
      c.openTimer = null;
      if (!c.opened && !c.closed) c.ws.close();
    }, delay(this._o.openTimeoutMs));
    c.ws.onopen = () => {
      clearTimeout(c.openTimer);
      if (this._done || this._conn !== c) return void c.ws.close(1000);
      c.opened = true;
      this._openedWith(c);
      this._took(c, c.topics);
      const reconnected = this._reconnects > 0;
      this._failures = 0;
      this._syncTopics(c);
      // A listener may close() the client: then nothing more happens.
      this._emitState("open", {});
      if (reconnected && !this._done) this._emitState("resync", { reason: "reconnected" });
      if (!this._done) this._startTimers(c);
    };
    c.ws.onmessage = (ev) => this._receive(c, ev.data);
    c.ws.onclose = (ev) => {
      clearTimeout(c.openTimer);
      c.closed = true;
      this._lost(c, ev);
    };
  }

  // _lost handles the close of connection c.
  _lost(c, ev) {
    if (this._done) return;
    if (this._next === c) {
      // A renewal that did not make it; the current connection goes on
      // and tries again later.
      this._next = null;
      endOverlap(c);
      if (!c.opened) this._failedWith(c);
      this._renewFailures++;
      if (this._conn) this._scheduleRenewal(this._backoff(this._renewFailures));
      return;
    }
    if (this._conn !== c) {
      // An old connection a renewal replaced.
      endOverlap(c);
      if (this._old === c) {
        this._old = null;
        clearTimeout(this._drainTimer);
      }
      return;
    }
    this._conn = null;
    this._stopTimers();
    if (this._next) {
      // The cap came before the renewal opened: the renewal takes over.
      endOverlap(c);
      this._conn = this._next;
      this._next = null;
      return;
    }
    // One that failed offline does not count (see _away), but asks for a
    // fresh ID all the same: the browser may be wrong about the network,
    // and the gateway may have refused the ID.
    if (!c.opened) {
      if (!this._offline()) this._failures++;
      this._needFreshId = true;
      this._failedWith(c);
    }
    this._retry({ code: ev.code, reason: ev.reason });
  }

  _backoff(attempt) {
    const ceiling = Math.min(this._o.maxBackoffMs, this._o.backoffMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + this._random() * (ceiling / 2));
  }

  _retry(info) {
    if (this._failures >= this._o.maxAttempts) {
      // A browser is not told why a handshake failed: say what it may be,
      // every refusal of the gateway's $connect (a 400, 401, 403, 429 or
      // 503 is a close 1006 here), and where the gateway says which.
      const n = this._failures;
      const reason =
        info.reason === NO_ID
          ? `${n} attempts in a row never opened, the last without a chatter ID: getChatterId failed or answered none`
          : `${n} handshake${n === 1 ? "" : "s"} in a row never opened${info.reason ? ` (${info.reason})` : ""}: ` +
            "the gateway refused the chatter ID (unknown, expired or revoked), a topic it may not follow, the geek over its connection limit " +
            "or this page's origin, or the gateway is down (socks serve logs each refusal with its reason)";
      this._giveUp({ attempt: n, code: info.code, reason });
      return;
    }
    this._reconnects++;
    const attempt = this._reconnects;
    const away = this._away();
    const wait = away ? this._awayWait() : delay(this._backoff(attempt));
    this._retryInfo = { attempt, code: info.code, reason: info.reason };
    this._emitState("reconnecting", { attempt, delay: wait, code: info.code, reason: info.reason });
    if (this._done) return; // a listener closed the client
    this._dialIn(wait, away);
  }

  // _away reports whether the browser says it is offline and the client
  // hears the online event (see _onOnline): it then dials once per longest
  // backoff step (_awayWait), whose failures do not count, or at once when
  // the network comes back. navigator.onLine false does not prove the
  // network gone (a VPN's virtual interface, a known Chrome bug on some
  // systems): a client that waited for the online event alone would never
  // connect there. A browser that really is offline spends a failed
  // handshake on it, which costs nothing.
  _away() {
    return this._offline() && typeof globalThis.addEventListener === "function";
  }

  // _awayWait is the wait before a dial while the browser says it is
  // offline: the longest backoff step, maxBackoffMs, jittered to 50-100 %.
  _awayWait() {
    return delay(this._backoff(Infinity));
  }

  // _giveUp stops dialling after maxAttempts handshakes in a row that never
  // opened, and says "failed". Unlike _finish, it goes on listening: when
  // the network comes back or the page is shown again (what a gateway down
  // for minutes, a laptop that slept through them, or a refused ID that
  // getChatterId may now replace all look alike), it tries once more (see
  // _revive). No connection is open: the one that failed was the last.
  _giveUp(info) {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._retryInfo = null;
    this._waitingOnline = false;
    this._stopTimers();
    this._emitState("failed", info);
  }

  // _revive tries once more after "failed" (see _giveUp), after a wait of
  // its own within the first backoff step (see _jitter): every tab shown
  // at once, every browser behind a network that came back, hears the
  // event at once. However many events come meanwhile, one handshake; one
  // that does not open is failed again at once, as _failures is still at
  // maxAttempts; one that opens starts the count over. A page that must
  // not try again calls close().
  _revive() {
    if (this._done || this._frozen || this.state !== "failed") return;
    // The ID failed maxAttempts handshakes: ask getChatterId afresh, even
    // for one whose expiresAt this browser's clock says is far off (the
    // clock may be hours behind). One ID per try, and tries come only
    // with the page's events.
    this._needFreshId = true;
    this._idSuspect = true;
    this._reconnects++;
    const wait = this._jitter();
    this._retryInfo = { attempt: this._reconnects };
    this._emitState("reconnecting", { attempt: this._reconnects, delay: wait });
    if (this._done) return; // a listener closed the client
    this._dialIn(wait);
  }

  // _dialIn dials after wait ms; anyway, even if the browser says it is
  // offline then.
  _dialIn(wait, anyway = false) {
    clearTimeout(this._retryTimer);
    this._retryAt = Date.now() + wait;
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._dial(anyway);
    }, wait);
  }

  // _hurry cuts a reconnect's wait that has more than the first backoff
  // step to go (the network came back, the page was shown again: the
  // gateway may have been down for a while, the backoff at its longest, or
  // the link was what failed) to a wait of its own within that step (see
  // _jitter), and says so with "reconnecting" again (the same attempt, the
  // new delay). The attempt counts as it would have: however many events
  // come, one dial, and maxAttempts as before.
  _hurry() {
    if (this._offline() || !this._retryTimer || !this._retryInfo || this._retryAt - Date.now() <= this._o.backoffMs) return;
    const wait = this._jitter();
    const { attempt, code, reason } = this._retryInfo;
    this._dialIn(wait);
    this._emitState("reconnecting", { attempt, delay: wait, code, reason });
  }

  _startTimers(c) {
    this._stopTimers();
    this._beat(c);
    // The backoff starts over once a connection has stayed open as long as
    // the longest wait. One that a gateway closes sooner (a backend that
    // deletes the geek's connections, a cap) is retried after longer and
    // longer waits, not every half second for ever.
    this._steadyTimer = setTimeout(() => {
      this._steadyTimer = null;
      this._reconnects = 0;
    }, delay(this._o.maxBackoffMs));
    // The renewal comes at a random time from renewBeforeMs to half as
    // much again before the cap: clients that connected together (after a
    // gateway restart) would otherwise renew together, a burst of connects
    // every maxDurationMs for ever; the random part spreads them further at
    // every renewal.
    const cap = this._o.maxDurationMs;
    const before = Math.min(this._o.renewBeforeMs, cap / 4);
    this._scheduleRenewal(cap - before - Math.round((this._random() * before) / 2));
  }

  _stopTimers() {
    clearTimeout(this._wakeTimer);
    clearTimeout(this._checkTimer);
    this._wakeTimer = this._checkTimer = null;
    clearTimeout(this._heartbeat);
    clearTimeout(this._renewTimer);
    clearTimeout(this._steadyTimer);
    this._heartbeat = null;
    this._renewTimer = null;
    this._steadyTimer = null;
  }

  // _beat pings c (see _ping) a random time from three quarters of
  // heartbeatMs to heartbeatMs from now, and so on while c is the
  // connection: clients that connected together (after a gateway restart)
  // would otherwise ping together at every beat, a burst of route
  // invocations; the random part spreads them further at every beat. A
  // beat never comes later than heartbeatMs, which is well under the idle
  // timeout.
  _beat(c) {
    const hb = this._o.heartbeatMs;
    this._heartbeat = setTimeout(() => {
      this._heartbeat = null;
      this._ping(c);
      if (!this._done && this._conn === c && !c.closed) this._beat(c);
    }, delay(hb - Math.round((this._random() * hb) / 4)));
  }

  _scheduleRenewal(ms) {
    if (this._done) return;
    clearTimeout(this._renewTimer);
    this._renewTimer = setTimeout(() => {
      this._renewTimer = null;
      this._renew();
    }, delay(ms));
  }

  _ping(c) {
    if (c !== this._conn || c.ws.readyState !== 1) return;
    if (this._checkTimer) return; // a check judges the ping it waits for
    // No pong since the last ping: the connection is dead without having
    // said so.
    if (c.unansweredPings > 0) return void this._dead(c);
    c.unansweredPings++;
    this._send(c, { action: "ping" });
  }

  // _dead closes c, a connection without a pong, and reconnects at once: a
  // browser waits up to a minute for the answer to a close frame, which a
  // dead link never sends, before it fires onclose.
  _dead(c) {
    this._abandon(c, 4000, "no pong");
  }

  // _abandon closes c and goes on as if it had closed with code and
  // reason (see _lost): nothing more it receives or says counts.
  _abandon(c, code, reason) {
    c.ws.close(code, reason);
    c.closed = true;
    c.ws.onmessage = c.ws.onclose = null;
    this._lost(c, { code, reason });
  }

  // _freeze closes every connection cleanly (1000 "page frozen") and
  // stops every timer when the page goes into the back/forward cache or is
  // frozen: an open WebSocket keeps a page out of Chrome's cache, and a
  // frozen page reads nothing from one while the gateway goes on sending
  // to it. It says "reconnecting" (no delay: it waits for the page) unless
  // it said so already; see _thaw.
  _freeze() {
    // A client that failed has nothing open, and tries once more when the
    // page is shown again (see _revive).
    if (this._done || this._frozen || this.state === "failed") return;
    this._frozen = true;
    this._epoch++;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._waitingOnline = false;
    this._stopTimers();
    clearTimeout(this._drainTimer);
    for (const c of [this._conn, this._next, this._old]) {
      if (!c) continue;
      clearTimeout(c.openTimer);
      endOverlap(c);
      c.ws.onopen = c.ws.onmessage = c.ws.onclose = null;
      if (!c.closed) {
        c.closed = true;
        try {
          c.ws.close(1000, FROZEN);
        } catch {
          // already closing
        }
      }
    }
    this._conn = this._next = this._old = null;
    if (this.state === "reconnecting" && this._retryInfo) return;
    this._reconnects++;
    this._retryInfo = { attempt: this._reconnects, code: 1000, reason: FROZEN };
    this._emitState("reconnecting", { attempt: this._reconnects, code: 1000, reason: FROZEN });
  }

  // _thaw dials again when the page is shown again from the back/forward
  // cache or resumes, after a wait of its own (see _jitter): a site's tabs
  // may resume together. It says "reconnecting" with that delay (the
  // attempt _freeze said); the connection fires "resync" once open.
  _thaw() {
    if (this._done || !this._frozen) return;
    this._frozen = false;
    const wait = this._jitter();
    const { attempt, code, reason } = this._retryInfo;
    this._emitState("reconnecting", { attempt, delay: wait, code, reason });
    if (this._done) return; // a listener closed the client
    this._dialIn(wait);
  }

  // _jitter is a wait uniform within the first backoff step, in ms: what
  // spreads the clients that hear the same event (online, visibilitychange).
  _jitter() {
    return delay(Math.round(this._random() * this._o.backoffMs));
  }

  // _wake checks the open connection (see _check) after a wait of its own
  // (see _jitter), once however many events come meanwhile.
  _wake() {
    const c = this._conn;
    if (this._done || !c || !c.opened || this._wakeTimer || this._checkTimer) return;
    this._wakeTimer = setTimeout(() => {
      this._wakeTimer = null;
      this._check();
    }, this._jitter());
  }

  // _check asks the gateway now (_wake says when) whether the open
  // connection still carries, after the network came back or the page was
  // shown again (a laptop that slept, a tab in the background): the socket
  // may look open over a link that is gone, which the heartbeat would
  // notice only up to twice heartbeatMs later, with every message
  // meanwhile lost. No pong within openTimeoutMs reconnects.
  _check() {
    const c = this._conn;
    if (this._done || !c || !c.opened || c.ws.readyState !== 1 || this._checkTimer) return;
    if (c.unansweredPings === 0) {
      c.unansweredPings++;
      this._send(c, { action: "ping" });
    }
    this._checkTimer = setTimeout(() => {
      this._checkTimer = null;
      if (c === this._conn && !c.closed && c.unansweredPings > 0) this._dead(c);
    }, delay(this._o.openTimeoutMs));
  }

  _send(c, frame) {
    c.pending.push(frame);
    c.ws.send(JSON.stringify(frame));
  }

  // _reply takes the action that body, shaped like a route reply, answers
  // off c's pending ones, and reports whether one awaited it: a pong
  // answers a ping, subscribed a subscribe, unsubscribed an unsubscribe,
  // and an error a subscribe or an unsubscribe (the ping route always
  // pongs); socks serve's too-many-frames error answers the oldest
  // action, a ping too, as `socks listen` takes it (a ping so answered
  // proves the link alive). A body no action awaits is a published
  // message. A subscribe the gateway refused (an error with the topics
  // still followed: a chatter ID limited to other topics, or too many) is
  // dropped from the topics, or every later connect would ask for it and
  // be refused; every error is reported. Answers may come in another
  // order than the frames (API Gateway runs each in its own invocation),
  // so, as `socks listen` matches them: a refusal answers the oldest
  // subscribe that asked for a topic outside those it names, and a
  // subscribed naming topics the oldest subscribe whose topics it all
  // names; of that subscribe's topics, those it does not name are not
  // followed (a refusal run first was taken for another subscribe's) and
  // dropped as refused ones.
  _reply(c, body) {
    const find = (match) => c.pending.findIndex(match);
    // A Set: another server's reply may name millions of topics, each
    // looked up for every topic of every subscribe waiting.
    // A refusal's are the topics still followed; a subscribed's, those
    // followed once it ran, every topic of its subscribe among them (one
    // that names none says nothing of them: another server's).
    const topics = Array.isArray(body.topics) && (body.type === "error" || (body.type === "subscribed" && body.topics.length > 0)) ? new Set(body.topics) : null;
    const kept = body.type === "error" ? topics : null;
    const named = body.type === "subscribed" ? topics : null;
    let i;
    if (body.type !== "error") {
      const action = { pong: "ping", subscribed: "subscribe", unsubscribed: "unsubscribe" }[body.type];
      i = named ? find((f) => f.action === action && f.topics.every((t) => named.has(t))) : -1;
      if (i < 0) i = find((f) => f.action === action);
    } else if (!kept && typeof body.error === "string" && body.error.startsWith(TOO_MANY_FRAMES + ":")) {
      i = c.pending.length > 0 ? 0 : -1;
    } else {
      i = kept ? find((f) => f.action === "subscribe" && f.topics.some((t) => !kept.has(t))) : -1;
      if (i < 0) i = find((f) => f.action !== "ping");
    }
    if (i < 0) return false;
    const [frame] = c.pending.splice(i, 1);
    if (frame.action === "ping") c.unansweredPings = 0;
    this._answered(c);
    if (body.type !== "error") {
      const unnamed = named ? frame.topics.filter((t) => !named.has(t)) : [];
      if (frame.action === "subscribe") this._took(c, named ? frame.topics.filter((t) => named.has(t)) : frame.topics);
      if (unnamed.length > 0 && (c === this._conn || !this._conn)) {
        this._drop(c, unnamed);
        report(new Error(`socks: the gateway's answer to ${JSON.stringify(frame)} does not name ${unnamed.map((t) => JSON.stringify(t)).join(", ")} among the topics followed: dropped, so that no later connect asks for it`));
      }
      return true;
    }
    // The gateway lost the connection's record, so nothing published
    // reaches it any more: one fresh connection, after the usual backoff,
    // asks for every topic followed. The action is not dropped: the next
    // connection asks for a subscribe's topics, and not for an
    // unsubscribe's.
    if (body.error === NOT_REGISTERED) {
      report(new Error(`socks: the gateway refused ${JSON.stringify(frame)}: ${shown(body.error)}`));
      if (c === this._conn && !c.closed) this._abandon(c, 1000, "not registered");
      return true;
    }
    // The refusal of a connection a renewal replaced is only reported: the
    // new connection asked for the same topics itself, at its connect or
    // when it opened, and its own answer decides (a fresh chatter ID may
    // follow more topics). A topic asked for alone (below) that gets an
    // error without topics (socks serve dropped the frame over its rate, 50
    // a second, and those come in a burst) is dropped as a refused one: the
    // connection does not follow it, whether the gateway allows it is not
    // known, and a connect that named one it refuses would be refused whole.
    if ((kept || frame[ALONE]) && frame.action === "subscribe" && (c === this._conn || !this._conn)) {
      const refused = kept ? frame.topics.filter((t) => !kept.has(t)) : frame.topics;
      // The topics of one task's subscribes go in one frame (see _action),
      // which the gateway refuses whole for one topic it will not have:
      // each still followed is asked for alone, so that only those the
      // gateway refuses are dropped (and reported, each by its answer). On
      // a connection that is closing, all are dropped: a topic the gateway
      // refuses in a connect URL refuses the whole connect.
      // So too with no room for them all (see _syncTopics): held, they would be
      // named by the next connect if this connection closed first.
      let again = c.ws.readyState === 1 && refused.length > 1 ? refused.filter((t) => this._topics.includes(t)) : [];
      if (c.pending.length + again.length > MAX_PENDING) {
        if (again.length > 0) this._lag(c);
        again = [];
      }
      if (again.length > 0) {
        for (const t of again) this._send(c, { action: "subscribe", topics: [t], [ALONE]: true });
        return true;
      }
      this._drop(c, refused);
    }
    report(new Error(`socks: the gateway refused ${JSON.stringify(frame)}: ${shown(body.error)}`));
    return true;
  }

  // _lag says that MAX_PENDING subscribes and unsubscribes wait for c's
  // answers, once: not again until the gateway has answered half of them,
  // so that a gateway answering slower than the page changes topics, each
  // answer making room for one frame, is not said to lag at every answer.
  _lag(c) {
    if (c.lagging) return;
    c.lagging = true;
    report(new Error(`socks: ${MAX_PENDING} subscribes and unsubscribes already wait for the gateway's answer (is it answering?): the topics changed since are sent as it answers, or asked for by the next connection`));
  }

  // _answered is called when an action of c got its answer: a change of
  // topics held for room (see _syncTopics) may go now.
  _answered(c) {
    if (c.pending.length <= MAX_PENDING / 2) c.lagging = false;
    if (c.held && c === this._conn) this._action();
  }

  // _drop stops following topics the gateway refused on c, or did not take
  // when asked for alone (see _reply): c does not follow them, and no
  // later connect asks for them.
  _drop(c, topics) {
    c.topics = c.topics.filter((t) => !topics.includes(t));
    this._topics = this._topics.filter((t) => !topics.includes(t));
    for (const t of topics) this._accepted.delete(t);
  }

  // _gatewayError handles API Gateway's error frame on c: it answers the
  // oldest action still waiting (the frame names none), which failed and is
  // not retried. A ping answered so was answered: the link is alive. A
  // subscribe's topics stay followed, so the next connection asks for them,
  _gatewayError(c, body) {
    const frame = c.pending.shift();
    if (frame && frame.action === "ping") c.unansweredPings = 0;
    if (frame) this._answered(c);
    // except a topic asked for alone after a refusal, which is dropped as in
    // _reply: those come in a burst, which API Gateway may answer so for a
    // throttled function, and it may be one the gateway refuses.
    if (frame && frame[ALONE] && (c === this._conn || !this._conn)) this._drop(c, frame.topics);
    const what = frame ? JSON.stringify(frame) : "a frame";
    report(new Error(`socks: the gateway failed ${what}: ${shown(body.message)} (requestId ${shown(body.requestId)})`));
  }

  // _syncTopics sends c what subscribe() and unsubscribe() changed since
  // it was asked for its topics: while it was opening, or since the last
  // sync. One subscribe and one unsubscribe at most, and only while fewer
  // than MAX_PENDING wait for c's answers: past that, a change is held
  // (c.topics keeps what was sent), said (see _lag), and sent as the
  // gateway answers (see _answered), the subscribe first; the next
  // connection asks for every topic followed.
  _syncTopics(c) {
    const add = this._topics.filter((t) => !c.topics.includes(t));
    const drop = c.topics.filter((t) => !this._topics.includes(t));
    c.held = false;
    if (add.length > 0) {
      if (c.pending.length < MAX_PENDING) {
        c.topics = c.topics.concat(add);
        this._send(c, { action: "subscribe", topics: add });
      } else c.held = true;
    }
    if (drop.length > 0) {
      if (c.pending.length < MAX_PENDING) {
        c.topics = c.topics.filter((t) => !drop.includes(t));
        this._send(c, { action: "unsubscribe", topics: drop });
      } else c.held = true;
    }
    if (c.held) this._lag(c);
  }

  // _action syncs the open connection's topics (see _syncTopics) once the
  // task that called subscribe() or unsubscribe() is done: a page that
  // changes forty topics one call at a time sends one subscribe and one
  // unsubscribe, not eighty frames, which a gateway's frame rate (socks
  // serve --max-frames-per-second, 50; the deployed stage's throttling)
  // would drop in part, leaving the connection without topics the client
  // says it follows.
  _action() {
    if (this._syncQueued) return;
    this._syncQueued = true;
    queueMicrotask(() => {
      this._syncQueued = false;
      // What the page stopped following in the task is no longer taken
      // (see _accepted), unless it follows it again.
      for (const t of this._accepted) if (!this._topics.includes(t)) this._accepted.delete(t);
      const c = this._conn;
      if (!this._done && c && c.opened && c.ws.readyState === 1) this._syncTopics(c);
      // Otherwise the next connection asks for every topic at $connect.
    });
  }

  // _renew opens a new connection before the cap; once it is open it
  // replaces the current one, which is then closed.
  async _renew() {
    const cur = this._conn;
    if (this._done || !cur || !cur.opened || this._next) return;
    let failed = false;
    try {
      await this._freshId();
    } catch (err) {
      report(err);
      failed = true;
    }
    // The connection may have dropped (and a reconnect begun) meanwhile.
    if (this._done || this._conn !== cur || cur.closed || this._next) return;
    if (failed && this._idUntil && this._idUntil <= Date.now()) {
      // getChatterId failed and the ID there is is past its expiresAt,
      // which the gateway refuses (see _dial): a renewal that did not
      // open, tried again after its backoff.
      this._renewFailures++;
      this._scheduleRenewal(this._backoff(this._renewFailures));
      return;
    }
    let c;
    try {
      c = this._open();
    } catch (err) {
      this._refused(err);
      return;
    }
    this._next = c;
    c.openTimer = setTimeout(() => {
      c.openTimer = null;
      if (!c.opened && !c.closed) c.ws.close();
    }, delay(this._o.openTimeoutMs));
    c.ws.onopen = () => {
      clearTimeout(c.openTimer);
      if (this._done || (this._next !== c && this._conn !== c)) return void c.ws.close(1000);
      c.opened = true;
      this._openedWith(c);
      const prev = this._conn === c ? null : this._conn;
      this._next = null;
      this._conn = c;
      this._took(c, c.topics);
      this._failures = 0;
      this._renewFailures = 0;
      this._syncTopics(c);
      // The old connection is closed only a while after the new one
      // receives: nothing published in between is lost, and what both get
      // meanwhile is delivered once (see duplicate).
      if (prev) {
        prev.peer = c;
        c.peer = prev;
        prev.seen = new Map();
        c.seen = new Map();
        this._old = prev;
        clearTimeout(this._drainTimer);
        this._drainTimer = setTimeout(() => {
          if (!prev.closed) prev.ws.close(1000, "renewed");
        }, delay(this._o.overlapMs));
      }
      this._emitState("resync", { reason: "renewed" });
      if (!this._done) this._startTimers(c);
    };
    c.ws.onmessage = (ev) => this._receive(c, ev.data);
    c.ws.onclose = (ev) => {
      clearTimeout(c.openTimer);
      c.closed = true;
      if (!c.opened && this._conn === c) {
        // Took over from a capped connection and then failed to open.
        this._conn = null;
        if (!this._offline()) this._failures++;
        this._needFreshId = true;
        this._failedWith(c);
        this._retry({ code: ev.code, reason: ev.reason });
        return;
      }
      this._lost(c, ev);
    };
  }

  _receive(c, data) {
    if (this._done) return;
    if (typeof data !== "string") {
      // socks sends text frames only: another server's binary frame is
      // ignored, and said once for the connection (not closed for it).
      if (!c.binarySaid) {
        c.binarySaid = true;
        report(new Error("socks: the gateway sent a binary frame, which socks never sends: ignored (said once for each connection)"));
      }
      return;
    }
    /** @type {any} */
    let body = data;
    try {
      body = JSON.parse(data);
    } catch {
      // Not JSON: the text itself is the event key.
    }
    if (isGatewayError(body)) return void this._gatewayError(c, body);
    if (isReply(body) && this._reply(c, body)) return;
    if (duplicate(c, data)) return;
    for (const fn of [...this._messageFns]) {
      if (!this._messageFns.has(fn)) continue; // removed during this dispatch
      try {
        fn(body);
      } catch (err) {
        report(err);
      }
    }
    let key = null;
    if (typeof body === "string") key = body;
    else if (body !== null && typeof body === "object" && typeof body.type === "string") key = body.type;
    if (key === null) return;
    const fns = this._keys.get(key);
    if (!fns) return;
    for (const fn of [...fns]) {
      if (!fns.has(fn)) continue; // removed during this dispatch
      try {
        fn(body);
      } catch (err) {
        report(err);
      }
    }
  }

  _finish(state, info) {
    this._done = true;
    clearTimeout(this._retryTimer);
    this._waitingOnline = false;
    if (typeof globalThis.removeEventListener === "function") {
      globalThis.removeEventListener("online", this._onOnline);
      globalThis.removeEventListener("pagehide", this._onPageHide);
      globalThis.removeEventListener("pageshow", this._onPageShow);
    }
    globalThis.document?.removeEventListener?.("visibilitychange", this._onVisible);
    globalThis.document?.removeEventListener?.("freeze", this._onFreeze);
    globalThis.document?.removeEventListener?.("resume", this._onResume);
    for (const t of this._idTimers) clearTimeout(t);
    this._stopTimers();
    clearTimeout(this._drainTimer);
    for (const c of [this._conn, this._next, this._old]) {
      if (c) clearTimeout(c.openTimer);
      if (c && !c.closed) {
        try {
          c.ws.close(1000);
        } catch {
          // already closing
        }
      }
    }
    this._conn = this._next = this._old = null;
    this._emitState(state, info);
  }
}
