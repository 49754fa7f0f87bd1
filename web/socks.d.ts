// Type declarations of socks.js, the browser client of socks.

/** The subprotocol offered next to the chatter ID with protocol "header". */
export const SUBPROTOCOL: "socks";

/** How the chatter ID reaches the gateway. */
export type Protocol =
  /**
   * ?geek=NAME&id=CHATTER_ID&topic=...: the ID is in the URL, so whatever logs request URLs (a proxy, load balancer
   * or CDN in front of the gateway) records it. Works through anything that forwards the URL.
   */
  | "query"
  /**
   * Sec-WebSocket-Protocol: socks, CHATTER_ID: the ID stays out of URLs and the access logs that record them; only
   * logs of request headers see it. Fails every handshake (401) when something on the way drops that header.
   */
  | "header";

/**
 * What connect() takes: the options, with a chatterId, a getChatterId or both (connect throws a TypeError for
 * neither).
 */
export type ConnectOptions = ConnectOptionsBase & ({ chatterId: string } | { getChatterId: GetChatterId });

/**
 * The options of connect(). One given as undefined takes its default (so each is typed `| undefined`, for
 * exactOptionalPropertyTypes); the numbers must be above 0 (connect throws a TypeError otherwise), and a wait
 * longer than a browser's timers allow (2^31-1 ms, about 24 days), as one of Infinity, is cut to that.
 */
export interface ConnectOptionsBase {
  /** The gateway's WebSocket URL, e.g. "wss://abc.execute-api.eu-west-1.amazonaws.com/prod" or "ws://127.0.0.1:8765/". */
  url: string;
  /**
   * The geek (user) whose messages to receive. connect throws a TypeError for a name the gateway refuses (whitespace,
   * a control or invisible formatting character, a lone surrogate, "," or "#", over 128 bytes, or "."): a browser
   * cannot see the gateway's 400, and would retry until it failed.
   */
  geek: string;
  /**
   * The geek's chatter ID. Optional when getChatterId is given. With protocol "header", connect throws a TypeError
   * (without the ID in its message) for one that cannot be a chatter ID, such as one pasted with a space inside.
   */
  chatterId?: string | undefined;
  /**
   * Topics to follow: an array or a comma list. None: every topic of the geek, ".", which subscribe() adds to
   * and unsubscribe(".") drops. connect throws a TypeError for a name the gateway refuses, as subscribe does.
   */
  topics?: readonly string[] | string | undefined;
  /**
   * Called for a fresh chatter ID after a handshake that never opened, before each renewal, and before a reconnect
   * when the ID it answered with an expiresAt is near that.
   * One that throws, has not answered within openTimeoutMs, or answers what is no chatter ID (not a string; with
   * protocol "header", text with characters a subprotocol may not have, such as an error page's) counts as a
   * handshake that never opened, unless the client goes on with the ID it has (a renewal or a reconnect does, unless that
   * ID is past its expiresAt, which the gateway refuses); such an answer is never shown.
   * An answer {chatterId, expiresAt} (as the live page's POST /chatter-id gives; `socks chatter issue --json` says id) is
   * used again, without asking, while it is valid for over a minute past openTimeoutMs, unless a handshake failed
   * with it after one had opened (it may have been revoked): a gateway that keeps failing handshakes is not handed
   * a new ID per attempt, which would pile up the geek's live IDs (capped per geek).
   */
  getChatterId?: GetChatterId | undefined;
  /** Default "query". */
  protocol?: Protocol | undefined;
  /**
   * Handshakes in a row that never opened before the client gives up with "failed" (not counting those while the
   * browser was offline, unless the gateway is on this machine: localhost, 127.0.0.0/8, [::1], the hosts socks serve
   * takes as its own; not a name under localhost, which it refuses). While navigator.onLine is false the client waits
   * for the online event, but dials at the latest after the longest backoff step (maxBackoffMs, jittered to 50-100 %),
   * as navigator.onLine may be false while the network works. "failed" then stops the retries until the network
   * comes back or the page is shown again (see onState). Default 10: with the default backoff, 61 s to 2 min 2 s of
   * waits from a first connect and 76 s to 2 min 32 s after a drop, plus the handshakes' own time.
   */
  maxAttempts?: number | undefined;
  /**
   * The longest interval of the {"action":"ping"} heartbeat in ms: each beat comes a random time from three quarters
   * of it to all of it after the last. Default 4 minutes (API Gateway's idle timeout is 10).
   */
  heartbeatMs?: number | undefined;
  /** The gateway's cap on a connection's life in ms. Default 2 hours, as API Gateway. */
  maxDurationMs?: number | undefined;
  /**
   * How long before the cap the connection is renewed, in ms, at most a quarter of the cap; a random part of up to
   * half as much again is added, so that clients that connected together do not renew together. Default 5 minutes
   * (so 5 to 7.5 minutes before the cap).
   */
  renewBeforeMs?: number | undefined;
  /**
   * First reconnect delay in ms; it doubles per attempt, with jitter. Also the bound of the random wait before the
   * client dials when the network comes back, and before it checks its connection when the network comes back or
   * the page is shown again; a reconnect delay with more than this to go is then cut to such a wait ("reconnecting"
   * again, the same attempt, the new delay). Default 500.
   */
  backoffMs?: number | undefined;
  /**
   * Longest reconnect delay in ms. Default 30 000. The delays start over from backoffMs only once a connection
   * has stayed open this long: one closed sooner (even if its handshake opened) is followed by a longer delay.
   */
  maxBackoffMs?: number | undefined;
  /**
   * A handshake not open after this many ms counts as failed. Also how long the check made when the network comes
   * back or the page is shown again waits for its pong before it reconnects. Default 15 000.
   */
  openTimeoutMs?: number | undefined;
  /** How long a renewal keeps the old connection open after the new one opened, in ms. Default 2 000. */
  overlapMs?: number | undefined;
  /** The WebSocket constructor to use (tests). Default globalThis.WebSocket. */
  WebSocket?: typeof WebSocket | undefined;
  /** A random source in [0, 1) for the jitter (tests). Default Math.random. */
  random?: (() => number) | undefined;
}

/** Asks the page's server for a chatter ID: see ConnectOptionsBase.getChatterId. */
export type GetChatterId = () => string | ChatterIdAnswer | PromiseLike<string | ChatterIdAnswer>;

/** An answer of getChatterId that says until when the ID is valid. */
export interface ChatterIdAnswer {
  chatterId: string;
  /**
   * RFC 3339 time (or ms since the epoch, or a Date) after which the gateway refuses the ID. A number below 1e11
   * (March 1973 in ms) is taken as seconds since the epoch, as the chatter table's expiresAt or a JWT's exp, and
   * reported once (reportError). This browser's clock judges it: one already past or within openTimeoutMs and a
   * minute when the answer comes (the clock hours ahead, or a stale answer) is reported once and not used, the
   * answer then taken as a plain string; a clock behind costs a refused handshake, then a fresh ID.
   */
  expiresAt: string | number | Date;
}

/** A published message body, JSON-parsed. */
export type Body = string | number | boolean | null | { [key: string]: unknown } | unknown[];

export type State = "connecting" | "open" | "reconnecting" | "resync" | "failed" | "closed";

/**
 * What onState gives with each state, as socks.js gives it: the fields it always gives (no ?), and those it gives
 * sometimes (?). A field a state does not list is not given with it (see StateInfoOf).
 */
export interface StateInfos {
  /** Before the first handshake. */
  connecting: {
    /** 0: no handshake has failed yet. */
    attempt: 0;
  };
  open: {};
  reconnecting: {
    /** The attempt number (1, 2, ...) since a connection last stayed open maxBackoffMs (connections closed sooner do not start it over). */
    attempt: number;
    /**
     * The delay in ms before the attempt. None when the page went into the back/forward cache or was frozen: the
     * client then waits for the page, and says "reconnecting" again with the delay when it is shown again.
     */
    delay?: number;
    /**
     * The close code of the connection that ended: 1006 when a handshake failed (a browser cannot tell a refused
     * chatter ID from a gateway that is down), 1000 with "page frozen", 0 with "no chatter ID" (getChatterId failed or
     * answered none). None (or undefined) for the try after "failed", which no close began.
     */
    code?: number | undefined;
    /**
     * The close reason ("not registered": the gateway lost the connection's record; "page frozen": the page was frozen
     * or cached on pagehide, see onState; "no pong", code 4000: the connection did not answer a ping). None (or
     * undefined) with no code.
     */
    reason?: string | undefined;
  };
  /** After every reconnect or renewal: refetch what the page shows. */
  resync: {
    reason: "reconnected" | "renewed";
  };
  failed: {
    /** The handshakes in a row that never opened. */
    attempt: number;
    /**
     * The close code of the last handshake (a browser says 1006 for one that never opened; 0 when it had no chatter
     * ID). None when the browser refused to open a WebSocket to the URL.
     */
    code?: number;
    /** Why the client gave up, in words (what the browser said, with the chatter ID hidden, when it refused the URL). */
    reason: string;
  };
  closed: {};
}

/**
 * The info of state S: the fields StateInfos gives it, and every other field of the other states as absent (so
 * that reading one, info.delay on "open", is undefined rather than an error where info is not narrowed).
 */
export type StateInfoOf<S extends State> = StateInfos[S] & {
  [K in Exclude<StateInfoField, keyof StateInfos[S]>]?: undefined;
};

/** The fields of every state's info. */
export type StateInfoField = { [S in State]: keyof StateInfos[S] }[State];

/** The info of any state: what a listener that does not narrow its state gets. */
export type StateInfo = { [S in State]: StateInfoOf<S> }[State];

/**
 * The arguments of onState's listener, a state with its info: a listener that narrows state narrows info with it
 * (TypeScript 4.6 and later), so that on "resync" info.reason is "reconnected" | "renewed", and on "reconnecting"
 * info.attempt is a number.
 */
export type StateChange = { [S in State]: [state: S, info: StateInfoOf<S>] }[State];

export interface Client {
  /**
   * Fires fn for each published body whose event key is key: a string body, or an object body's string "type".
   * Returns a function that removes fn. As with addEventListener, a listener removed during a dispatch (by another
   * listener of the same body) is not called for it, and one added then is called from the next body on.
   */
  on(key: string, fn: (body: Body) => void): () => void;
  off(key: string, fn: (body: Body) => void): void;
  /**
   * Fires fn for every published body, JSON-parsed (text frames only: a binary frame, which socks never sends, is
   * reported once for each connection and ignored). Delivery is at least once: a body may come again (a retried
   * post), and bodies may come out of order. Nothing on the wire names a message: a page that must count a body
   * once publishes it with an ID of its own and skips the IDs it has seen.
   */
  onMessage(fn: (body: Body) => void): () => void;
  /**
   * Fires fn on every change of the connection's state: "connecting", "open",
   * "reconnecting" (info.attempt; said again with a new info.delay when the wait is cut short, and without a delay
   * when the page goes into the back/forward cache or is frozen: pagehide persisted or freeze close the connection
   * cleanly, 1000 "page frozen", and pageshow persisted or resume dial again), "resync" (after every reconnect or renewal:
   * messages published meanwhile are not replayed, refetch what the page
   * shows), "failed" (gave up after maxAttempts: it then tries once more, "reconnecting" first, each time the network
   * comes back or the page is shown again, online, visibilitychange to visible or pageshow, and is "failed" again at
   * once if that handshake does not open; or for good at once when the browser
   * refuses to open a WebSocket to the URL: info.reason then says what the
   * browser said, with the chatter ID hidden) and "closed" (close()).
   */
  onState(fn: (...change: StateChange) => void): () => void;
  /**
   * A listener of the state alone, as the one above. TypeScript refuses a listener with fewer parameters than every
   * tuple of a union of rest parameters has (microsoft/TypeScript#48663): this overload takes it.
   */
  onState(fn: (state: State) => void): () => void;
  /**
   * Follows more topics, now and on every later connection. A later connection names in its URL the topics the gateway
   * took and subscribes to the rest once open, so that one the gateway refuses, subscribed while disconnected, is
   * refused alone (as below), not the whole connect (which a browser cannot tell from a gateway that is down). The subscribes and unsubscribes of one task go to the
   * gateway together once it ends, as one subscribe frame and one unsubscribe frame at most. Throws a TypeError for a
   * name the gateway refuses (whitespace, a control character, "," or "#", over 128 bytes) and past 50 topics. A
   * subscribe the gateway refuses (a chatter ID limited to other topics, or its --max-topics) is asked for again topic
   * by topic when it named several; each topic refused is reported (reportError) and dropped, so that no later connect
   * asks for it, and so is one asked for alone that the gateway did not take (over socks serve's frame rate, a route
   * that failed), and one its subscribed reply does not name (answers may come out of order: a refusal may have been
   * taken for another subscribe's). Otherwise one whose route failed (API Gateway's {"message":"Internal server error",...}) is
   * reported and its topics kept: the next connection asks for them. One answered "this connection is not registered;
   * reconnect" (the gateway lost the connection's record, so nothing published reaches it) is reported, and the client
   * closes that connection (1000 "not registered") and reconnects after the usual backoff. At most 256 subscribes and unsubscribes wait
   * for the gateway's answers on a connection: past that the changes are held, reported once (not again until it has
   * answered half of them), and sent as it answers, one frame an answer (the subscribe first when both wait) (or asked
   * for by the next connection).
   */
  subscribe(topics: readonly string[] | string): void;
  /**
   * Stops following topics, now and on every later connection (sent as subscribe() says). One the gateway refuses
   * or whose route failed is reported; its topics may go on arriving until the next connection, which does not ask
   * for them; one answered "this connection is not registered; reconnect" also reconnects, as subscribe() says.
   */
  unsubscribe(topics: readonly string[] | string): void;
  /** Closes the connection for good, and stops listening to the page's events: a client that failed too. */
  close(): void;
  /** The current state (never "resync", which is an event). */
  readonly state: Exclude<State, "resync">;
  /** The topics followed now ("." is every topic). */
  readonly topics: string[];
}

/** The defaults of the options that have one. */
export const DEFAULTS: {
  readonly [K in "protocol" | "maxAttempts" | "heartbeatMs" | "maxDurationMs" | "renewBeforeMs" | "backoffMs" | "maxBackoffMs" | "openTimeoutMs" | "overlapMs"]-?: Exclude<ConnectOptionsBase[K], undefined>;
};

/** Opens a connection to a socks gateway and keeps it open. */
export function connect(options: ConnectOptions): Client;
