// A TypeScript page that uses socks.js as the README's "In the browser:
// socks.js" section teaches it. e2e/typescript_test.go compiles it with
// each pinned tsc (7, and the newest 5.x) under strict (tsconfig.json):
// web/socks.d.ts must accept every line here, and refuse each line
// marked @ts-expect-error (tsc fails on a marker whose line compiles).

import {
  connect,
  DEFAULTS,
  SUBPROTOCOL,
  type Body,
  type ChatterIdAnswer,
  type Client,
  type ConnectOptions,
  type ConnectOptionsBase,
  type Protocol,
  type State,
  type StateChange,
  type StateInfo,
  type StateInfoOf,
  type StateInfos,
} from "../../web/socks.js";

declare const chatterId: string; // from your login
declare function refetchPlays(): void;
declare function showChat(msg: Body): void;
declare function refetchEverything(): void;

// The README's example, as it is written there.
const socks = connect({
  url: "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod", // or ws://127.0.0.1:8765/
  geek: "Friendless",
  chatterId, // from your login
  topics: ["updates"],
  protocol: "header", // chatter ID in Sec-WebSocket-Protocol; "query" (default) puts it in ?id=
  getChatterId: async () => (await fetch("/api/chatter-id")).text(), // optional: a fresh ID when one is refused, and before renewal
});
socks.on("plays-updated", () => refetchPlays()); // a string body is an event key
socks.on("chat", (msg) => showChat(msg)); // an object body {"type":"chat",...} fires on("chat")
socks.onMessage((body) => console.log(body)); // every body, JSON-parsed
socks.onState((state, info) => {
  // connecting, open, reconnecting (info.attempt), resync, failed, closed
  if (state === "resync") refetchEverything();
});
socks.subscribe("news"); // also on every later connection; a refused one is dropped and reported

// A chatter ID alone, the default protocol, every topic (no topics).
const plain: Client = connect({ url: "ws://127.0.0.1:8765/", geek: "Friendless", chatterId: "sc_abc" });

// getChatterId alone, in each of its answer forms.
connect({ url: "ws://127.0.0.1:8765/", geek: "Friendless", getChatterId: () => "sc_abc" });
connect({ url: "ws://127.0.0.1:8765/", geek: "Friendless", getChatterId: async () => "sc_abc" });
connect({
  url: "ws://127.0.0.1:8765/",
  geek: "Friendless",
  // The live page's POST /chatter-id answers {chatterId, expiresAt}, expiresAt an RFC 3339 string.
  getChatterId: async (): Promise<ChatterIdAnswer> => {
    const res = await fetch("./chatter-id", { method: "POST", body: JSON.stringify({ geek: "Friendless" }) });
    if (!res.ok) throw new Error(`no chatter ID: ${res.status}`);
    const { chatterId, expiresAt } = (await res.json()) as { chatterId: string; expiresAt: string };
    return { chatterId, expiresAt };
  },
});
connect({ url: "ws://127.0.0.1:8765/", geek: "g", getChatterId: () => ({ chatterId: "sc_abc", expiresAt: Date.now() + 3_600_000 }) });
connect({ url: "ws://127.0.0.1:8765/", geek: "g", getChatterId: () => ({ chatterId: "sc_abc", expiresAt: new Date(Date.now() + 3_600_000) }) });
connect({ url: "ws://127.0.0.1:8765/", geek: "g", getChatterId: () => ({ chatterId: "sc_abc", expiresAt: "2026-12-01T12:16:36.755Z" }) });
// Seconds since the epoch (a JWT's exp, the chatter table's TTL) are taken, and reported once.
connect({ url: "ws://127.0.0.1:8765/", geek: "g", getChatterId: async () => ({ chatterId: "sc_abc", expiresAt: 1_796_000_000 }) });
// One answer or the other, as a function that sometimes knows the expiry.
const either = async (): Promise<string | ChatterIdAnswer> => (Math.random() < 0.5 ? "sc_abc" : { chatterId: "sc_abc", expiresAt: 0 });
connect({ url: "ws://127.0.0.1:8765/", geek: "g", getChatterId: either });

// Every option (the type makes each one given: an option added to socks.d.ts fails here until it is).
type EveryOption = { [K in keyof ConnectOptionsBase]-?: Exclude<ConnectOptionsBase[K], undefined> };
const WS: typeof WebSocket = WebSocket;
const options: EveryOption = {
  url: "ws://127.0.0.1:8765/",
  geek: "Friendless",
  chatterId: "sc_abc",
  topics: "updates,news", // a comma list
  getChatterId: () => "sc_abc",
  protocol: "query",
  maxAttempts: 10,
  heartbeatMs: 4 * 60 * 1000,
  maxDurationMs: 20_000, // socks serve --max-duration 20s
  renewBeforeMs: 5_000,
  backoffMs: 500,
  maxBackoffMs: 30_000,
  openTimeoutMs: 15_000,
  overlapMs: 2_000,
  WebSocket: WS,
  random: Math.random,
};
const full = connect(options);
const annotated: ConnectOptions = options;
connect(annotated);
// An option given as undefined takes its default (exactOptionalPropertyTypes too), every one.
const pasted: string = "";
connect({ ...options, protocol: pasted ? "header" : undefined });
connect({
  url: "ws://127.0.0.1:8765/",
  geek: "Friendless",
  chatterId: "sc_abc",
  topics: undefined,
  getChatterId: undefined,
  protocol: undefined,
  maxAttempts: undefined,
  heartbeatMs: undefined,
  maxDurationMs: undefined,
  renewBeforeMs: undefined,
  backoffMs: undefined,
  maxBackoffMs: undefined,
  openTimeoutMs: undefined,
  overlapMs: undefined,
  WebSocket: undefined,
  random: undefined,
});
// Infinity is cut to the browser's longest timer.
connect({ ...options, maxDurationMs: Infinity });
// Topics from a constant list.
const TOPICS = ["updates", "news"] as const;
connect({ ...options, topics: TOPICS });
// A pasted chatter ID, else one asked of the page's server (as the live page does).
connect({
  url: "ws://127.0.0.1:8765/",
  geek: "Friendless",
  protocol: "header",
  ...(pasted ? { chatterId: pasted } : { getChatterId: either }),
});

// The defaults, as their option's type.
const protocol: Protocol = DEFAULTS.protocol;
const numbers: number[] = [
  DEFAULTS.maxAttempts,
  DEFAULTS.heartbeatMs,
  DEFAULTS.maxDurationMs,
  DEFAULTS.renewBeforeMs,
  DEFAULTS.backoffMs,
  DEFAULTS.maxBackoffMs,
  DEFAULTS.openTimeoutMs,
  DEFAULTS.overlapMs,
];
const subprotocol: "socks" = SUBPROTOCOL;
console.log(protocol, numbers, subprotocol);

// Listeners, and the functions that remove them.
const onPlays = (body: Body) => console.log(body);
const offPlays: () => void = full.on("plays-updated", onPlays);
full.off("plays-updated", onPlays);
offPlays();
const offMessages: () => void = full.onMessage((body) => {
  if (typeof body === "string") console.log(body.toUpperCase());
  else if (body !== null && typeof body === "object" && !Array.isArray(body) && body.type === "chat") showChat(body);
});
offMessages();

// Every state and event name onState says, and what info holds.
const offStates: () => void = full.onState((state: State, info: StateInfo) => {
  switch (state) {
    case "connecting":
      console.log(info.attempt);
      break;
    case "open":
      break;
    case "reconnecting":
      console.log(`attempt ${info.attempt}, in ${((info.delay ?? 0) / 1000).toFixed(1)} s`, info.code, info.reason);
      break;
    case "resync":
      console.log(info.reason); // "reconnected" or "renewed"
      refetchEverything();
      break;
    case "failed":
      console.log(info.attempt, info.reason);
      break;
    case "closed":
      break;
    default: {
      const never: never = state;
      console.log(never);
    }
  }
});
offStates();

// Narrowing the state narrows its info: what socks.js always gives with a state is no longer optional.
full.onState((state, info) => {
  if (state === "reconnecting") {
    const attempt: number = info.attempt;
    const delay: number | undefined = info.delay; // none while the page is frozen
    console.log(attempt, delay ?? "when the page is shown again", info.code, info.reason);
  } else if (state === "resync") {
    const why: "reconnected" | "renewed" = info.reason;
    console.log(why);
  } else if (state === "failed") {
    const attempts: number = info.attempt;
    const why: string = info.reason;
    console.log(attempts, why, info.code);
  } else if (state === "connecting") {
    const none: 0 = info.attempt;
    console.log(none);
  } else {
    const nothing: undefined = info.reason; // "open" and "closed" give no info
    console.log(nothing);
  }
});
// A listener of its own type, a named StateChange.
const onChange = (...[state, info]: StateChange) => {
  if (state === "failed") console.log(info.reason.length);
};
full.onState(onChange);
// A listener of the state alone, of neither, or of both as State and StateInfo.
full.onState(() => refetchEverything());
const logState = (s: State) => console.log(s);
full.onState(logState);
const logBoth = (s: State, i: StateInfo) => console.log(s, i.attempt, i.delay, i.code, i.reason);
full.onState(logBoth);
// The info of one state, by name.
const frozen: StateInfoOf<"reconnecting"> = { attempt: 1, code: 1000, reason: "page frozen" };
const resynced: StateInfos["resync"] = { reason: "renewed" };
console.log(frozen, resynced);

// Topics: a name, a comma list or an array; "." is every topic.
full.subscribe("news");
full.subscribe("sport,weather");
full.subscribe(["jobs", "chat"]);
full.subscribe(TOPICS);
full.unsubscribe(".");
full.unsubscribe(["jobs"]);
const followed: string[] = full.topics;
console.log(followed.includes("news"));

// The state is never "resync", which is an event.
const now: "connecting" | "open" | "reconnecting" | "failed" | "closed" = full.state;
console.log(now);

full.close();
plain.close();

// What the types refuse.

// @ts-expect-error: connect needs a url.
connect({ geek: "g", chatterId: "sc_abc" });
// @ts-expect-error: connect needs a geek.
connect({ url: "ws://127.0.0.1:8765/", chatterId: "sc_abc" });
// @ts-expect-error: connect needs a chatterId or a getChatterId (socks.js throws a TypeError).
connect({ url: "ws://127.0.0.1:8765/", geek: "g" });
// @ts-expect-error: protocol is "query" or "header".
connect({ ...options, protocol: "cookie" });
// @ts-expect-error: the numbers are numbers, not text.
connect({ ...options, maxAttempts: "10" });
// @ts-expect-error: topics are names, not numbers.
connect({ ...options, topics: [1, 2] });
// @ts-expect-error: getChatterId answers a string or {chatterId, expiresAt}.
connect({ ...options, getChatterId: async () => ({ id: "sc_abc" }) });
// @ts-expect-error: expiresAt is an RFC 3339 string, ms (or seconds) since the epoch, or a Date.
connect({ ...options, getChatterId: () => ({ chatterId: "sc_abc", expiresAt: true }) });
// @ts-expect-error: random answers a number in [0, 1).
connect({ ...options, random: () => undefined });
// @ts-expect-error: neither may be left undefined (the live page's pattern needs the spread above).
connect({ url: "ws://127.0.0.1:8765/", geek: "g", chatterId: pasted || undefined, getChatterId: pasted ? undefined : either });
// @ts-expect-error: an option socks.js does not have (a misspelling).
connect({ ...options, heartBeatMs: 1000 });

full.onState((state) => {
  // @ts-expect-error: no such state or event ("reconnecting", then "resync").
  if (state === "reconnected") refetchEverything();
});
full.onState((state, info) => {
  // @ts-expect-error: "reconnecting" may come without a delay (the page frozen).
  if (state === "reconnecting") console.log(info.delay.toFixed());
  // @ts-expect-error: "failed" may come without a code (the browser refused the URL).
  if (state === "failed") console.log(info.code.toFixed());
  // @ts-expect-error: "open" gives no attempt.
  if (state === "open") console.log(info.attempt.toFixed());
  // @ts-expect-error: "resync"'s reason is "reconnected" or "renewed".
  if (state === "resync" && info.reason === "reconnecting") refetchEverything();
});
// @ts-expect-error: the state is never "resync", which is an event.
if (full.state === "resync") refetchEverything();
// @ts-expect-error: a listener gets the body, not a MessageEvent.
full.onMessage((ev: MessageEvent) => console.log(ev.data));
// @ts-expect-error: topics are read, not set (subscribe and unsubscribe change them).
full.topics = ["news"];
// @ts-expect-error: nor is the state.
full.state = "open";
// @ts-expect-error: subscribe takes names.
full.subscribe(42);
