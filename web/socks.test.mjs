// Unit tests of socks.js with Node's test runner and fake timers:
//   node --test web/
// A fake WebSocket stands in for the browser's; the tests open, close and
// feed it by hand, and move the clock with mock.timers.
import { test, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect, DEFAULTS } from "./socks.js";

// FakeWebSocket records every socket the client makes.
class FakeWebSocket {
  static all = [];
  constructor(url, protocols) {
    // As a browser: a subprotocol must be an HTTP token.
    for (const p of [].concat(protocols ?? [])) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(p)) throw new SyntaxError(`invalid subprotocol ${JSON.stringify(p)}`);
    }
    this.url = new URL(url);
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeWebSocket.all.push(this);
  }
  send(data) {
    assert.equal(this.readyState, 1, "send on a socket that is not open");
    this.sent.push(JSON.parse(data));
  }
  close(code = 1005, reason = "") {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.closedWith = { code, reason };
  }
  // Test controls.
  serverOpen() {
    this.readyState = 1;
    this.onopen?.({});
  }
  serverSend(text) {
    this.onmessage?.({ data: text });
  }
  serverClose(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }
  // finishClose completes a close the client started.
  finishClose() {
    assert.ok(this.closedWith, "the client did not close this socket");
    this.serverClose(this.closedWith.code, this.closedWith.reason);
  }
}

const latest = () => FakeWebSocket.all.at(-1);
// asked is what a socket asked for: its connect URL's topics ("." when
// none), then those of the subscribes it sent.
const asked = (ws) => [...(ws.url.searchParams.get("topic") ?? ".").split(","), ...ws.sent.flatMap((f) => (f.action === "subscribe" ? f.topics : []))];
// flush lets promises and microtasks run (setImmediate is not faked).
const flush = () => new Promise((resolve) => setImmediate(resolve));

// stateInfos reads socks.d.ts's StateInfos: for each state, the fields of its info, each with its type and whether it
// is optional (?).
function stateInfos(dts) {
  const infos = dts.match(/export interface StateInfos \{([\s\S]*?)\n\}/);
  assert.ok(infos, "socks.d.ts has interface StateInfos");
  return new Map(
    [...infos[1].replace(/\/\*\*[\s\S]*?\*\//g, "").matchAll(/^ {2}(\w+): \{([^}]*)\};/gm)].map(([, state, fields]) => [
      state,
      [...fields.matchAll(/^ {4}(\w+)(\??): ([^;]+);/gm)].map(([, field, optional, type]) => ({ field, optional: optional === "?", type })),
    ]),
  );
}
const STATE_INFOS = stateInfos(readFileSync(new URL("./socks.d.ts", import.meta.url), "utf8"));

// misfits says how an info onState gave with state differs from what StateInfos declares for it: a field it does
// not declare, one it declares required that is missing, a value not of its type (number, string, undefined or a
// literal). client() checks every info its listener gets, and afterEach fails a test that saw a misfit.
function misfits(state, info) {
  const fields = STATE_INFOS.get(state);
  if (!fields) return [`"${state}" is not in StateInfos`];
  const fit = (value, type) =>
    type.split(" | ").some((t) => (t === "undefined" ? value === undefined : t === "number" || t === "string" ? typeof value === t : JSON.stringify(value) === t));
  return [
    ...Object.keys(info).filter((k) => !fields.some((f) => f.field === k)).map((k) => `"${state}" gave ${k}, which StateInfos["${state}"] does not declare`),
    ...fields.filter((f) => !f.optional && !(f.field in info)).map((f) => `"${state}" gave no ${f.field}, which StateInfos["${state}"] requires`),
    ...fields.filter((f) => f.field in info && !fit(info[f.field], f.type)).map((f) => `"${state}" gave ${f.field} ${JSON.stringify(info[f.field]) ?? "undefined"}, not a ${f.type}`),
  ];
}
let misfitInfos = [];

function client(extra = {}) {
  const states = [];
  const c = connect({
    url: "ws://gateway.test/prod",
    geek: "Friendless",
    chatterId: "sc_first",
    topics: ["updates"],
    WebSocket: FakeWebSocket,
    random: () => 0.5,
    ...extra,
  });
  c.onState((state, info) => {
    states.push({ state, ...info });
    misfitInfos.push(...misfits(state, info));
  });
  return { c, states };
}

async function opened(extra) {
  const r = client(extra);
  await flush();
  latest().serverOpen();
  return r;
}

// Browsers run a timer of more than 2^31-1 ms at once.
const MAX_DELAY = 2 ** 31 - 1;
// running holds the timers the client has set and not cleared (timeouts
// until they fire), so that a test can see that none outlives close().
let running = new Set();
let unwrap = () => {};

beforeEach(() => {
  FakeWebSocket.all = [];
  // Date too: a chatter ID's expiresAt (see _keepId) passes with the
  // fake clock, as it would in a browser, never with the machine's.
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: Date.parse("2026-11-30T12:00:00Z") });
  const g = globalThis;
  const real = { setTimeout: g.setTimeout, setInterval: g.setInterval, clearTimeout: g.clearTimeout, clearInterval: g.clearInterval };
  running = new Set();
  const checked = (ms) => {
    assert.ok(!(ms > MAX_DELAY), `a timer of ${ms} ms, which a browser runs at once`);
    // A browser runs a timer of NaN ms at once too (mock.timers never runs it).
    assert.ok(ms >= 0, `a timer of ${ms} ms, which a browser runs at once`);
    return ms;
  };
  g.setTimeout = (fn, ms, ...args) => {
    const id = real.setTimeout((...a) => {
      running.delete(id);
      fn(...a);
    }, checked(ms), ...args);
    running.add(id);
    return id;
  };
  g.setInterval = (fn, ms, ...args) => {
    const id = real.setInterval(fn, checked(ms), ...args);
    running.add(id);
    return id;
  };
  g.clearTimeout = (id) => {
    running.delete(id);
    real.clearTimeout(id);
  };
  g.clearInterval = (id) => {
    running.delete(id);
    real.clearInterval(id);
  };
  unwrap = () => Object.assign(g, real);
});
afterEach(() => {
  unwrap();
  mock.timers.reset();
  const misfit = misfitInfos;
  misfitInfos = [];
  assert.deepEqual(misfit, [], "what onState gave, against socks.d.ts's StateInfos");
});

test("protocol query puts the geek, chatter ID and topics in the URL", async () => {
  const { c, states } = await opened();
  const ws = latest();
  assert.equal(ws.url.pathname, "/prod");
  assert.equal(ws.url.searchParams.get("geek"), "Friendless");
  assert.equal(ws.url.searchParams.get("id"), "sc_first");
  assert.equal(ws.url.searchParams.get("topic"), "updates");
  assert.equal(ws.protocols, undefined);
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open"]);
  assert.equal(c.state, "open");
  c.close();
  assert.equal(c.state, "closed");
});

test("protocol header offers socks and the chatter ID, and keeps the ID out of the URL", async () => {
  const { c } = await opened({ protocol: "header" });
  const ws = latest();
  assert.deepEqual(ws.protocols, ["socks", "sc_first"]);
  assert.equal(ws.url.searchParams.has("id"), false);
  assert.doesNotMatch(ws.url.toString(), /sc_first/);
  c.close();
});

test("a string body fires on(key), an object body fires on(type), onMessage gets every body", async () => {
  const { c, states } = await opened();
  const got = [];
  const onPlays = (b) => got.push(["plays", b]);
  c.on("plays-updated", onPlays);
  c.on("chat", (b) => got.push(["chat", b]));
  c.on("close", (b) => got.push(["close-key", b]));
  c.onMessage((b) => got.push(["message", b]));
  const ws = latest();
  ws.serverSend('"plays-updated"');
  ws.serverSend('{"type":"chat","id":7}');
  ws.serverSend('{"n":1}');
  ws.serverSend('"close"');
  c.off("plays-updated", onPlays);
  ws.serverSend('"plays-updated"');
  assert.deepEqual(got, [
    ["message", "plays-updated"],
    ["plays", "plays-updated"],
    ["message", { type: "chat", id: 7 }],
    ["chat", { type: "chat", id: 7 }],
    ["message", { n: 1 }],
    ["message", "close"],
    ["close-key", "close"],
    ["message", "plays-updated"],
  ]);
  // A published key "close" is not a state change.
  assert.equal(c.state, "open");
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open"]);
  c.close();
});

test("heartbeat: a ping well under the idle timeout, pongs are swallowed, a missing pong reconnects", async () => {
  assert.ok(DEFAULTS.heartbeatMs <= 5 * 60 * 1000, "the default heartbeat is well under 10 minutes");
  // random 0: every beat a whole heartbeatMs after the last, the longest
  // its jitter allows.
  const { c, states } = await opened({ random: () => 0 });
  const messages = [];
  c.onMessage((b) => messages.push(b));
  const ws = latest();
  mock.timers.tick(DEFAULTS.heartbeatMs - 1);
  assert.deepEqual(ws.sent, []);
  mock.timers.tick(1);
  assert.deepEqual(ws.sent, [{ action: "ping" }]);
  ws.serverSend('{"type":"pong","time":"2026-11-29T12:00:00Z"}');
  assert.deepEqual(messages, [], "the pong is the gateway's reply, not a message");
  mock.timers.tick(DEFAULTS.heartbeatMs);
  assert.deepEqual(ws.sent, [{ action: "ping" }, { action: "ping" }]);
  assert.equal(ws.closedWith, null);
  // No answer to the second ping: at the next beat the connection is dead.
  mock.timers.tick(DEFAULTS.heartbeatMs);
  assert.equal(ws.closedWith?.code, 4000);
  ws.finishClose();
  assert.equal(states.at(-1).state, "reconnecting");
  c.close();
});

test("backoff: reconnects with jittered exponential delays and gives up after maxAttempts", async () => {
  let r = 0;
  let randoms = null; // the backoff's, once the connection is lost
  const { c, states } = await opened({ random: () => (randoms ? randoms[r++] : 0.5), maxAttempts: 4 });
  randoms = [0, 0.999, 0.5, 0];
  latest().serverClose(1001, "going away");
  const delays = [];
  for (let i = 0; i < 4; i++) {
    const s = states.at(-1);
    assert.equal(s.state, "reconnecting");
    assert.equal(s.attempt, i + 1);
    delays.push(s.delay);
    const before = FakeWebSocket.all.length;
    mock.timers.tick(s.delay - 1);
    await flush();
    assert.equal(FakeWebSocket.all.length, before, "no attempt before the delay");
    mock.timers.tick(1);
    await flush();
    assert.equal(FakeWebSocket.all.length, before + 1);
    latest().serverClose(1006); // the handshake never opened
    await flush();
  }
  // ceiling 500, 1000, 2000, 4000; delay = ceiling/2 + random*ceiling/2
  assert.deepEqual(delays, [250, 1000, 1500, 2000]);
  assert.equal(states.at(-1).state, "failed");
  assert.equal(c.state, "failed");
  const n = FakeWebSocket.all.length;
  mock.timers.tick(60_000);
  await flush();
  assert.equal(FakeWebSocket.all.length, n, "no attempt after failed");
});

test("a handshake that never opened asks getChatterId for a fresh ID; a bad ID ends in failed after maxAttempts", async () => {
  const asked = [];
  const { c, states } = client({
    chatterId: undefined,
    maxAttempts: 2,
    getChatterId: async () => {
      asked.push(asked.length);
      return "sc_fresh" + asked.length;
    },
  });
  await flush();
  assert.equal(latest().url.searchParams.get("id"), "sc_fresh1");
  latest().serverClose(1006);
  mock.timers.tick(states.at(-1).delay);
  await flush();
  assert.equal(latest().url.searchParams.get("id"), "sc_fresh2");
  latest().serverClose(1006);
  await flush();
  assert.deepEqual(states.map((s) => s.state), ["connecting", "reconnecting", "failed"]);
  assert.equal(asked.length, 2);
  assert.equal(c.state, "failed");
});

test("a gateway restart does not exhaust the default maxAttempts, and fires resync", async () => {
  const { c, states } = await opened();
  latest().serverClose(1001, "going away");
  // The gateway is down for a while: several handshakes fail.
  for (let i = 0; i < 5; i++) {
    mock.timers.tick(states.at(-1).delay);
    await flush();
    latest().serverClose(1006);
  }
  mock.timers.tick(states.at(-1).delay);
  await flush();
  latest().serverOpen();
  assert.deepEqual(states.slice(-2).map((s) => s.state), ["open", "resync"]);
  assert.equal(c.state, "open");
  // A later drop, once the connection has stayed open maxBackoffMs, starts counting again from 1.
  mock.timers.tick(DEFAULTS.maxBackoffMs);
  latest().serverClose(1001);
  assert.equal(states.at(-1).attempt, 1);
  c.close();
});

test("renewal before the cap: the new connection opens before the old closes, with a fresh ID, and nothing is lost or doubled", async () => {
  const ids = ["sc_renewed"];
  // random 0: the renewal comes renewBeforeMs (at most a quarter of the
  // cap) before the cap, the latest its jitter allows.
  const { c, states } = await opened({ maxDurationMs: 20_000, getChatterId: async () => ids.shift(), random: () => 0 });
  const got = [];
  c.onMessage((b) => got.push(b));
  const old = latest();
  mock.timers.tick(14_999);
  await flush();
  assert.equal(FakeWebSocket.all.length, 1);
  mock.timers.tick(1); // a quarter of the cap before it
  await flush();
  assert.equal(FakeWebSocket.all.length, 2, "renewal opened a second connection");
  const next = latest();
  assert.equal(next.url.searchParams.get("id"), "sc_renewed");
  old.serverSend("1");
  old.serverSend('"x"'); // reaches only the old connection
  next.serverOpen();
  assert.equal(old.closedWith, null, "the old connection stays open while the new one starts");
  // Both connections are open: messages reach both, in either order.
  old.serverSend("2");
  next.serverSend("2");
  next.serverSend("3");
  next.serverSend('"x"'); // a later message with the same body is not dropped
  old.serverSend("3");
  old.serverSend('"x"');
  old.serverSend("4"); // the same body published twice
  old.serverSend("4");
  next.serverSend("4");
  next.serverSend("4");
  mock.timers.tick(DEFAULTS.overlapMs);
  assert.deepEqual(old.closedWith, { code: 1000, reason: "renewed" });
  old.finishClose();
  next.serverSend("5");
  assert.deepEqual(got, [1, "x", 2, 3, "x", 4, 4, 5]);
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open", "resync"]);
  // The next renewal comes a cap later.
  mock.timers.tick(15_000);
  await flush();
  assert.equal(FakeWebSocket.all.length, 3);
  c.close();
});

test("a renewal that does not open leaves the connection in place and is tried again", async () => {
  const { c, states } = await opened({ maxDurationMs: 20_000 });
  const first = latest();
  mock.timers.tick(15_000);
  await flush();
  latest().serverClose(1006);
  assert.equal(first.closedWith, null);
  assert.equal(c.state, "open");
  mock.timers.tick(DEFAULTS.backoffMs);
  await flush();
  assert.equal(FakeWebSocket.all.length, 3, "renewal tried again after a backoff");
  // The cap closes the old one before the renewal opens: the renewal takes over.
  first.serverClose(1001, "Going away");
  latest().serverOpen();
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open", "resync"]);
  c.close();
});

test("re-subscribe: topics added with subscribe() follow the client to its next connection", async () => {
  const { c, states } = await opened();
  const ws = latest();
  c.subscribe(["plays", "updates"]);
  c.unsubscribe("updates");
  await flush(); // sent once the task is done
  assert.deepEqual(ws.sent, [
    { action: "subscribe", topics: ["plays"] },
    { action: "unsubscribe", topics: ["updates"] },
  ]);
  const got = [];
  c.onMessage((b) => got.push(b));
  ws.serverSend('{"type":"subscribed","topics":["plays","updates"]}');
  ws.serverSend('{"type":"unsubscribed","topics":["plays"]}');
  assert.deepEqual(got, [], "replies to the client's own actions are not messages");
  ws.serverClose(1001);
  // While disconnected: remembered for the next connection, which asks
  // for it once open (a topic the gateway refuses in a connect URL would
  // refuse the whole connect; see the test of one subscribed while
  // disconnected).
  c.subscribe("news");
  mock.timers.tick(states.at(-1).delay);
  await flush();
  const again = latest();
  assert.notEqual(again, ws);
  assert.equal(again.url.searchParams.get("topic"), "plays");
  assert.deepEqual(c.topics, ["plays", "news"]);
  // The connect asked for plays: once open, no frame asks again.
  again.serverOpen();
  await flush();
  assert.deepEqual(again.sent, [{ action: "subscribe", topics: ["news"] }], "no subscribe or unsubscribe repeats what the connect URL asked for");
  // Nor is one queued while disconnected and sent on top of the URL's.
  again.serverClose(1006);
  c.unsubscribe("plays");
  c.subscribe("plays");
  c.unsubscribe("news");
  mock.timers.tick(states.at(-1).delay);
  await flush();
  assert.equal(latest().url.searchParams.get("topic"), "plays");
  latest().serverOpen();
  await flush();
  assert.deepEqual(latest().sent, []);
  c.close();
});

test("close() stops everything and says closed once", async () => {
  const { c, states } = await opened();
  const ws = latest();
  c.close();
  c.close();
  assert.equal(ws.closedWith.code, 1000);
  ws.finishClose();
  mock.timers.tick(3 * 60 * 60 * 1000);
  await flush();
  assert.equal(FakeWebSocket.all.length, 1);
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open", "closed"]);
});

test("subscribe() while a connection is opening reaches it once it opens", async () => {
  const { c } = client();
  await flush();
  const ws = latest();
  c.subscribe("plays");
  c.unsubscribe("updates");
  assert.deepEqual(ws.sent, [], "nothing is sent before open");
  ws.serverOpen();
  assert.deepEqual(ws.sent, [
    { action: "subscribe", topics: ["plays"] },
    { action: "unsubscribe", topics: ["updates"] },
  ]);
  c.close();
});

test("a getChatterId that fails is asked again on the next attempt", async () => {
  let calls = 0;
  const { c, states } = client({
    chatterId: undefined,
    getChatterId: async () => {
      calls++;
      if (calls === 1) throw new Error("login expired");
      return "sc_second";
    },
  });
  const errors = mock.method(console, "error", () => {});
  await flush();
  assert.equal(FakeWebSocket.all.length, 0, "no connection without an ID");
  assert.equal(states.at(-1).state, "reconnecting");
  mock.timers.tick(states.at(-1).delay);
  await flush();
  assert.equal(calls, 2);
  assert.equal(latest().url.searchParams.get("id"), "sc_second");
  assert.equal(errors.mock.callCount(), 1, "the failure is reported");
  errors.mock.restore();
  c.close();
});

test("a renewal stands down when the connection dropped while it waited for getChatterId", async () => {
  let release;
  const { c, states } = await opened({
    maxDurationMs: 20_000,
    getChatterId: () => new Promise((resolve) => (release = resolve)),
  });
  mock.timers.tick(15_000); // renewal starts and waits for an ID
  await flush();
  assert.equal(FakeWebSocket.all.length, 1);
  latest().serverClose(1001, "Going away");
  assert.equal(states.at(-1).state, "reconnecting");
  release("sc_late");
  await flush();
  assert.equal(FakeWebSocket.all.length, 1, "no renewal of a connection that is gone");
  mock.timers.tick(states.at(-1).delay);
  await flush();
  assert.equal(FakeWebSocket.all.length, 2, "the reconnect goes on");
  assert.equal(latest().url.searchParams.get("id"), "sc_late");
  c.close();
});

test("the default maxAttempts rides out a gateway that is down for over a minute", async () => {
  // The shortest delays the jitter allows.
  const { c, states } = await opened({ random: () => 0 });
  latest().serverClose(1001, "going away");
  let waited = 0;
  while (states.at(-1).state === "reconnecting") {
    waited += states.at(-1).delay;
    mock.timers.tick(states.at(-1).delay);
    await flush();
    latest().serverClose(1006);
  }
  assert.equal(states.at(-1).state, "failed");
  assert.equal(states.at(-1).attempt, DEFAULTS.maxAttempts);
  assert.ok(waited > 60_000, `gave up after ${waited} ms`);
  c.close();
});

test("with the defaults, \"failed\" comes after 61 to 122 s of backoff from a first connect, 76 to 152 s after a drop, as README and docs/protocol.md say", async () => {
  // random 0: each delay half its ceiling, the shortest; just under 1: the
  // whole ceiling, the longest. Ceilings 0.5, 1, 2, 4, 8, 16, 30, 30, 30,
  // 30 s: a first connect waits the first nine (its first handshake is at
  // once), a drop all ten.
  for (const [start, random, want] of [
    ["first connect", () => 0, 60_750],
    ["first connect", () => 1 - 2 ** -53, 121_500],
    ["drop", () => 0, 75_750],
    ["drop", () => 1 - 2 ** -53, 151_500],
  ]) {
    const { c, states } = client({ random });
    await flush();
    if (start === "drop") latest().serverOpen();
    latest().serverClose(1006);
    let waited = 0;
    while (states.at(-1).state === "reconnecting") {
      waited += states.at(-1).delay;
      mock.timers.tick(states.at(-1).delay);
      await flush();
      latest().serverClose(1006);
    }
    assert.equal(states.at(-1).state, "failed", start);
    assert.equal(states.at(-1).attempt, DEFAULTS.maxAttempts, start);
    assert.equal(waited, want, `${start}: waited ${waited} ms`);
    c.close();
  }
  const { readFile } = await import("node:fs/promises");
  for (const doc of ["../README.md", "../docs/protocol.md"]) {
    const text = (await readFile(new URL(doc, import.meta.url), "utf8")).replace(/\s+/g, " ");
    assert.ok(text.includes("61 s to 2 min 2 s") && text.includes("76 s to 2 min 32 s"), `${doc} gives the range`);
  }
});

test("options given as undefined take their defaults, and a number that is not above 0 is refused", async () => {
  const unset = Object.fromEntries(Object.keys(DEFAULTS).map((k) => [k, undefined]));
  const { c, states } = await opened(unset);
  const ws = latest();
  assert.equal(ws.url.searchParams.get("id"), "sc_first", "protocol undefined is the default, query");
  mock.timers.tick((3 * DEFAULTS.heartbeatMs) / 4 - 1);
  assert.deepEqual(ws.sent, [], "heartbeatMs undefined is the default, not a ping at every tick");
  ws.serverClose(1006);
  // random 0.5: the first delay is three quarters of backoffMs.
  assert.equal(states.at(-1).delay, (DEFAULTS.backoffMs * 3) / 4, "backoffMs undefined is the default, not NaN");
  c.close();
  // A cap longer than a timer can wait: the renewal waits as long as a timer can.
  const long = await opened({ maxDurationMs: 30 * 24 * 60 * 60 * 1000 });
  mock.timers.tick(60_000);
  await flush();
  assert.equal(FakeWebSocket.all.length, 2, "no renewal a minute after open");
  long.c.close();
  for (const [name, bad] of [
    ["heartbeatMs", 0],
    ["backoffMs", -1],
    ["maxAttempts", NaN],
    ["maxDurationMs", "7200000"],
    ["openTimeoutMs", null],
  ]) {
    assert.throws(() => client({ [name]: bad }), (err) => err instanceof TypeError && err.message.includes(name), `${name}: ${bad}`);
  }
});

test("an option of Infinity is a wait as long as a timer can wait, never a timer of NaN ms that a browser runs at once", async () => {
  // Infinity is above 0, so connect takes it; a random part of an infinite
  // wait (Infinity - Infinity, 0 * Infinity) is NaN, which a browser's
  // setTimeout runs at once: a heartbeat of Infinity pinged at once and
  // then closed the connection as dead ("no pong") a moment later, for
  // ever; a cap and renewBeforeMs of Infinity renewed at once, for ever.
  for (const random of [() => 0, () => 0.5]) {
    const hb = await opened({ heartbeatMs: Infinity, random });
    const ws = latest();
    mock.timers.tick(60 * 60 * 1000);
    await flush();
    assert.deepEqual(ws.sent, [], "heartbeatMs Infinity: no ping within the hour");
    assert.equal(ws.closedWith, null, "heartbeatMs Infinity: the connection is not given up");
    assert.deepEqual(hb.states.map((s) => s.state), ["connecting", "open"]);
    hb.c.close();
    const before = FakeWebSocket.all.length;
    const cap = await opened({ maxDurationMs: Infinity, renewBeforeMs: Infinity, random });
    mock.timers.tick(60 * 60 * 1000);
    await flush();
    assert.equal(FakeWebSocket.all.length, before + 1, "one socket: no renewal within the hour");
    cap.c.close();
    const back = await opened({ backoffMs: Infinity, maxBackoffMs: Infinity, random });
    latest().serverClose(1006);
    const s = back.states.at(-1);
    assert.equal(s.state, "reconnecting");
    assert.equal(s.delay, MAX_DELAY, "the reconnect waits as long as a timer can, and says so");
    back.c.close();
  }
});

test("close() leaves no timer running, in every phase, and also when a state listener calls it", async () => {
  const done = (c, states) => {
    for (const ws of FakeWebSocket.all) if (ws.closedWith && ws.readyState !== 3) ws.finishClose();
    assert.equal(states.at(-1).state, "closed");
    assert.equal(states.filter((s) => s.state === "closed").length, 1, "closed once, and last");
    assert.equal(running.size, 0, `${running.size} timers still running after close()`);
  };
  // While the first connection opens.
  let r = client();
  await flush();
  r.c.close();
  done(r.c, r.states);
  // Open, and while it waits to reconnect.
  r = await opened();
  r.c.close();
  done(r.c, r.states);
  r = await opened();
  latest().serverClose(1006);
  r.c.close();
  done(r.c, r.states);
  // While getChatterId has not answered, first and at a renewal.
  r = client({ chatterId: undefined, getChatterId: () => new Promise(() => {}) });
  await flush();
  r.c.close();
  done(r.c, r.states);
  r = await opened({ maxDurationMs: 20_000, getChatterId: () => new Promise(() => {}) });
  mock.timers.tick(15_000);
  await flush();
  r.c.close();
  done(r.c, r.states);
  // During a renewal's overlap.
  r = await opened({ maxDurationMs: 20_000 });
  mock.timers.tick(15_000);
  await flush();
  latest().serverOpen();
  r.c.close();
  done(r.c, r.states);
  // From a listener, on "open" after a reconnect (before "resync"), and on
  // "reconnecting".
  for (const when of ["open", "reconnecting"]) {
    r = await opened();
    latest().serverClose(1001);
    r.c.onState((state) => {
      if (state === when) r.c.close();
    });
    mock.timers.tick(r.states.at(-1).delay);
    await flush();
    if (when === "open") latest().serverOpen();
    else latest().serverClose(1006);
    done(r.c, r.states);
  }
});

test("a getChatterId that never answers counts as a failed handshake, and a renewal waiting for it goes on with the ID it has", async () => {
  const errors = mock.method(console, "error", () => {});
  const hang = () => new Promise(() => {});
  const { c, states } = client({ chatterId: undefined, getChatterId: hang, maxAttempts: 2 });
  await flush();
  assert.deepEqual(states.map((s) => s.state), ["connecting"]);
  mock.timers.tick(DEFAULTS.openTimeoutMs);
  await flush();
  assert.equal(states.at(-1).state, "reconnecting", "not stuck in connecting");
  mock.timers.tick(states.at(-1).delay);
  await flush();
  mock.timers.tick(DEFAULTS.openTimeoutMs);
  await flush();
  assert.equal(states.at(-1).state, "failed", "gives up after maxAttempts");
  assert.equal(FakeWebSocket.all.length, 0);
  assert.match(String(errors.mock.calls[0].arguments[0]), /getChatterId/);
  assert.equal(running.size, 0);

  const r = await opened({ maxDurationMs: 60_000, openTimeoutMs: 1000, getChatterId: hang });
  mock.timers.tick(45_000); // the renewal starts and waits for an ID
  await flush();
  assert.equal(FakeWebSocket.all.length, 1);
  mock.timers.tick(1000);
  await flush();
  assert.equal(FakeWebSocket.all.length, 2, "the renewal opened a connection");
  assert.equal(latest().url.searchParams.get("id"), "sc_first");
  latest().serverOpen();
  assert.equal(r.states.at(-1).state, "resync");
  r.c.close();
  errors.mock.restore();
});

test("a chatter ID read as a line of text (fetch(...).text() of \"sc_...\\n\") is used without its whitespace", async () => {
  const { c } = client({ chatterId: " sc_given\n", protocol: "header", getChatterId: async () => "sc_fresh\r\n" });
  await flush();
  assert.deepEqual(latest().protocols, ["socks", "sc_given"]);
  latest().serverClose(1006);
  mock.timers.tick(DEFAULTS.backoffMs);
  await flush();
  // A subprotocol with whitespace makes new WebSocket throw a SyntaxError.
  assert.deepEqual(latest().protocols, ["socks", "sc_fresh"]);
  c.close();
});

test("a client on every topic keeps every topic after subscribe() and a reconnect; one that unsubscribed from all gets no topic back", async () => {
  const { c, states } = await opened({ topics: undefined });
  let ws = latest();
  assert.equal(ws.url.searchParams.has("topic"), false, "no topic: the gateway's every topic, '.'");
  assert.deepEqual(c.topics, ["."]);
  c.subscribe("news");
  await flush();
  assert.deepEqual(ws.sent, [{ action: "subscribe", topics: ["news"] }]);
  ws.serverSend('{"type":"subscribed","topics":[".","news"]}');
  ws.serverClose(1001);
  mock.timers.tick(states.at(-1).delay);
  await flush();
  ws = latest();
  // topic=news alone would follow news only.
  assert.equal(ws.url.searchParams.get("topic"), ".,news");
  ws.serverOpen();
  c.unsubscribe([".", "news"]);
  await flush();
  ws.serverSend('{"type":"unsubscribed","topics":[]}');
  assert.deepEqual(c.topics, []);
  ws.serverClose(1001);
  mock.timers.tick(states.at(-1).delay);
  await flush();
  ws = latest();
  // A connect URL cannot ask for no topic (none is '.'): the new
  // connection drops '.' as soon as it opens.
  ws.serverOpen();
  assert.deepEqual(ws.sent, [{ action: "unsubscribe", topics: ["."] }]);
  c.close();
});

test("subscribe() and connect() refuse a topic the gateway would refuse, before anything is sent", async () => {
  const { c } = await opened();
  for (const bad of ["my topic", "a#b", "tab\tx", "nbsp\u00a0x", "bell\u0007", "rlo\u202ex", "zero\u200bwidth", "x".repeat(129), "é".repeat(65)]) {
    assert.throws(() => c.subscribe(bad), TypeError, JSON.stringify(bad));
  }
  assert.throws(() => c.subscribe(Array.from({ length: 50 }, (_, i) => `t${i}`)), /at most 50/);
  assert.deepEqual(latest().sent, []);
  assert.deepEqual(c.topics, ["updates"]);
  c.subscribe(["x".repeat(128), "é".repeat(64), "entity:42"]);
  await flush();
  assert.equal(latest().sent.length, 1);
  assert.throws(() => client({ topics: "plays, my topic" }), TypeError);
  c.close();
});

test("connect() refuses a geek the gateway would refuse, before anything is opened (it used to retry until it failed, with no reason)", async () => {
  const before = FakeWebSocket.all.length;
  for (const bad of ["Friend less", "a#b", "a,b", ".", "tab\tx", "nbsp\u00a0x", "bell\u0007", "rlo\u202ex", "zero\u200bwidth", "x".repeat(129), "é".repeat(65), "lone\ud800"]) {
    assert.throws(() => client({ geek: bad }), (err) => err instanceof TypeError && err.message.includes("geek"), JSON.stringify(bad));
  }
  await flush();
  assert.equal(FakeWebSocket.all.length, before, "no socket opened for a refused geek");
  for (const good of ["x".repeat(128), "é".repeat(64), "Friendless", "alice@example.com", "🎲"]) {
    client({ geek: good }).c.close();
  }
});

test("a topic that is not well-formed UTF-16 (a lone surrogate) is refused, as the gateway refuses one that is not UTF-8", async () => {
  const { c } = await opened();
  assert.throws(() => c.subscribe("lone\udc00"), TypeError);
  assert.throws(() => client({ topics: ["a\ud800b"] }), TypeError);
  c.close();
});

test("a subscribe the gateway refuses is dropped from the topics and reported, so the next connect does not ask for it", async () => {
  const errors = mock.method(console, "error", () => {});
  const { c, states } = await opened();
  const got = [];
  c.onMessage((b) => got.push(b));
  const ws = latest();
  c.subscribe("news");
  c.subscribe("entity:1");
  await flush();
  // One task's subscribes go in one frame, which the gateway refuses whole
  // for the one topic it will not have...
  assert.deepEqual(ws.sent, [{ action: "subscribe", topics: ["news", "entity:1"] }]);
  const refusal = '{"type":"error","error":"this chatter ID may not follow news; it may follow only updates, entity:*","topics":["updates"]}';
  ws.serverSend(refusal);
  // ... so each is asked for alone, and only news is refused.
  assert.deepEqual(ws.sent.slice(1), [
    { action: "subscribe", topics: ["news"] },
    { action: "subscribe", topics: ["entity:1"] },
  ]);
  assert.equal(errors.mock.callCount(), 0, "not reported yet");
  ws.serverSend(refusal);
  ws.serverSend('{"type":"subscribed","topics":["entity:1","updates"]}');
  assert.deepEqual(got, [], "the replies are not messages");
  assert.deepEqual(c.topics, ["updates", "entity:1"]);
  assert.equal(errors.mock.callCount(), 1);
  assert.match(String(errors.mock.calls[0].arguments[0]), /may not follow news/);
  // A body published as {"type":"error",...} while nothing waits for a reply is a message.
  ws.serverSend('{"type":"error","error":"job 7 failed"}');
  assert.deepEqual(got, [{ type: "error", error: "job 7 failed" }]);
  ws.serverClose(1001);
  mock.timers.tick(states.at(-1).delay);
  await flush();
  // news in the URL would be refused at every connect (403), ending in failed.
  assert.equal(latest().url.searchParams.get("topic"), "updates,entity:1");
  errors.mock.restore();
  c.close();
});

test("a topic asked for alone after a refusal that the gateway does not take is dropped too, not named in a connect the gateway would refuse", async () => {
  // The topics of a refused frame, asked for again one a frame, come in a
  // burst: socks serve drops the frames over its rate (50 a second) with
  // an error without topics, and API Gateway answers a route whose
  // function was throttled with its error frame. Such a topic was kept,
  // neither followed by the connection nor known to be allowed, and every
  // later connect named it, which the gateway refuses whole when it may
  // not be followed.
  const errors = mock.method(console, "error", () => {});
  const { c, states } = await opened();
  const ws = latest();
  c.subscribe(["a", "b", "c", "d"]);
  await flush();
  ws.serverSend('{"type":"error","error":"a connection may follow at most 2 topics; it follows 1, and these would add more than that","topics":["updates"]}');
  assert.deepEqual(ws.sent.slice(1), [
    { action: "subscribe", topics: ["a"] },
    { action: "subscribe", topics: ["b"] },
    { action: "subscribe", topics: ["c"] },
    { action: "subscribe", topics: ["d"] },
  ]);
  ws.serverSend('{"type":"subscribed","topics":["a","updates"]}');
  ws.serverSend('{"type":"error","error":"a connection may follow at most 2 topics; it follows 2, and these would add more than that","topics":["a","updates"]}');
  ws.serverSend('{"type":"error","error":"too many frames: send at most 50 per second; this one was dropped, and a client that keeps on is disconnected (1008)"}');
  ws.serverSend(JSON.stringify({ message: "Internal server error", connectionId: "L0SM9cOFvHcCIhw=", requestId: "L0SM9FRXvHcFoWg=" }));
  assert.deepEqual(c.topics, ["updates", "a"], "what the connection follows, and no more");
  assert.equal(errors.mock.callCount(), 3, "each topic dropped is reported");
  assert.match(String(errors.mock.calls[1].arguments[0]), /"c".*too many frames/);
  assert.match(String(errors.mock.calls[2].arguments[0]), /"d".*Internal server error/);
  ws.serverClose(1001);
  mock.timers.tick(states.at(-1).delay);
  await flush();
  assert.equal(latest().url.searchParams.get("topic"), "updates,a");
  errors.mock.restore();
  c.close();
});

test("socks serve's too-many-frames error answers the frame it dropped, a ping's too: never a message, and the link is alive", async () => {
  // socks serve answers, in order, each frame over its rate with an error
  // naming no topics, whatever the frame's action. A dropped ping's error
  // found no subscribe or unsubscribe waiting and went to onMessage as a
  // published message; with a subscribe after the ping, the error took the
  // subscribe and its "subscribed" reached onMessage instead.
  const errors = mock.method(console, "error", () => {});
  const tooMany = '{"type":"error","error":"too many frames: send at most 50 per second; this one was dropped, and a client that keeps on is disconnected (1008)"}';
  const { c } = await opened({ random: () => 0 });
  const messages = [];
  c.onMessage((b) => messages.push(b));
  const ws = latest();
  mock.timers.tick(DEFAULTS.heartbeatMs);
  assert.deepEqual(ws.sent, [{ action: "ping" }]);
  ws.serverSend(tooMany);
  assert.deepEqual(messages, [], "the error answers the ping alone waiting");
  assert.match(String(errors.mock.calls[0]?.arguments[0]), /"ping".*too many frames/);
  mock.timers.tick(DEFAULTS.heartbeatMs);
  assert.equal(ws.closedWith, null, "the gateway answered the ping: the connection is alive");
  assert.deepEqual(ws.sent.at(-1), { action: "ping" });
  c.subscribe("news");
  await flush();
  assert.deepEqual(ws.sent.at(-1), { action: "subscribe", topics: ["news"] });
  ws.serverSend(tooMany); // the ping's, the older
  ws.serverSend('{"type":"subscribed","topics":["news","updates"]}');
  assert.deepEqual(messages, [], "the subscribe's answer is not a message either");
  assert.deepEqual(c.topics, ["updates", "news"]);
  assert.equal(errors.mock.callCount(), 2, "each dropped frame is reported");
  assert.match(String(errors.mock.calls[1].arguments[0]), /"ping".*too many frames/);
  ws.serverSend('{"type":"error","error":"unknown"}');
  assert.equal(messages.length, 1, "an error nothing waits for is still a message");
  errors.mock.restore();
  c.close();
});

test("a connection without a pong is given up at once: the reconnect does not wait for a close the dead link never completes", async () => {
  // A browser waits up to 60 s for the server to answer a close frame
  // (Chromium's closing handshake timeout); a dead link never answers.
  const { c, states } = await opened();
  const ws = latest();
  mock.timers.tick(DEFAULTS.heartbeatMs); // a ping
  mock.timers.tick(DEFAULTS.heartbeatMs); // no pong since: dead
  assert.equal(ws.closedWith?.code, 4000);
  assert.equal(states.at(-1).state, "reconnecting", "reconnecting before the close completes");
  assert.equal(states.at(-1).reason, "no pong");
  mock.timers.tick(states.at(-1).delay);
  await flush();
  assert.equal(FakeWebSocket.all.length, 2);
  const got = [];
  c.onMessage((b) => got.push(b));
  ws.serverSend('"late"'); // the dead socket's last words are not delivered
  ws.finishClose(); // a minute later
  assert.deepEqual(got, []);
  assert.equal(states.filter((s) => s.state === "reconnecting").length, 1, "one reconnect");
  latest().serverOpen();
  assert.equal(c.state, "open");
  c.close();
});

test("socks.d.ts declares exactly what socks.js exports, reads and emits", async () => {
  const { readFile } = await import("node:fs/promises");
  const js = await readFile(new URL("./socks.js", import.meta.url), "utf8");
  const dts = await readFile(new URL("./socks.d.ts", import.meta.url), "utf8");
  const sorted = (it) => [...new Set(it)].sort();
  const block = (name) => {
    const m = dts.match(new RegExp(`export interface ${name} \\{([\\s\\S]*?)\\n\\}`));
    assert.ok(m, `socks.d.ts has interface ${name}`);
    // Members at the interface's own indentation, comments left out.
    return sorted([...m[1].replace(/\/\*\*[\s\S]*?\*\//g, "").matchAll(/^ {2}(?:readonly )?(\w+)\??[:(]/gm)].map((x) => x[1]));
  };
  const mod = await import("./socks.js");
  assert.deepEqual(sorted(Object.keys(mod)), sorted([...dts.matchAll(/^export (?:const|function) (\w+)/gm)].map((m) => m[1])), "exports");
  // ConnectOptions is ConnectOptionsBase with a chatterId or a getChatterId.
  assert.match(dts, /export type ConnectOptions = ConnectOptionsBase & \(\{ chatterId: string \} \| \{ getChatterId: GetChatterId \}\);/, "ConnectOptions");
  assert.deepEqual(block("ConnectOptionsBase"), sorted([...js.matchAll(/\b(?:o|this\._o)\.(\w+)/g)].map((m) => m[1])), "options");
  const c = connect({ url: "ws://gateway.test/", geek: "g", chatterId: "sc_x", WebSocket: FakeWebSocket });
  c.close();
  const proto = Object.getOwnPropertyNames(Object.getPrototypeOf(c)).filter((k) => k !== "constructor" && !k.startsWith("_"));
  const own = Object.keys(c).filter((k) => !k.startsWith("_"));
  assert.deepEqual(block("Client"), sorted([...proto, ...own]), "Client members");
  // What each state's info holds, read from every call in socks.js that says a state: _emitState("state", {...})
  // itself, or a method that hands its info on to _emitState (_giveUp(info) says "failed", _finish(state, info) the
  // state it is given). A call in another form fails here, so that none is left out.
  const handsOn = new Map([["_emitState", null]]); // the methods, and the state each says (null: its first argument)
  for (const [, name, params, body] of js.matchAll(/^ {2}(_\w+)\(([\w, ]*)\) \{\n([\s\S]*?)\n {2}\}$/gm)) {
    const on = body.match(/this\._emitState\((\w+|"\w+"), (\w+)\);/);
    if (!on || name === "_emitState") continue;
    const fixed = on[1].startsWith('"');
    assert.deepEqual(params.split(", "), fixed ? [on[2]] : [on[1], on[2]], `${name} hands its state and info on to _emitState as it was given them`);
    handsOn.set(name, fixed ? JSON.parse(on[1]) : null);
  }
  const given = new Map(); // state -> the infos socks.js gives with it, each a Map of field -> its source text
  for (const [name, state] of handsOn) {
    const calls = [...js.matchAll(new RegExp(`this\\.${name}\\(([^;]*)\\);`, "g"))].map((m) => m[1]);
    const forwarding = name === "_emitState" ? handsOn.size - 1 : 0; // the methods' own calls of _emitState
    const read = calls.map((args) => args.match(state === null ? /^"(\w+)", \{([^{}]*)\}$/ : /^()\{([^{}]*)\}$/)).filter(Boolean);
    assert.equal(read.length, calls.length - forwarding, `every call of ${name} says its state and gives its info as an object literal: ${calls.join(" · ")}`);
    for (const [, named, fields] of read) {
      const info = new Map(fields.split(",").map((f) => f.trim()).filter(Boolean).map((f) => [f.split(":")[0].trim(), f.includes(":") ? f.slice(f.indexOf(":") + 1).trim() : f]));
      for (const field of info.keys()) assert.match(field, /^\w+$/, `a field of ${named || state}'s info`);
      given.set(named || state, [...(given.get(named || state) ?? []), info]);
    }
  }
  // StateInfos declares, for each state, each field socks.js gives with it: without ? the fields it always gives,
  // with ? those it gives sometimes; a literal type (resync's reasons, connecting's attempt 0) is every value given.
  const declared = stateInfos(dts);
  assert.deepEqual(sorted(declared.keys()), sorted(given.keys()), "StateInfos' states");
  for (const [state, infos] of given) {
    const fields = declared.get(state);
    const all = sorted(infos.flatMap((info) => [...info.keys()]));
    const always = all.filter((f) => infos.every((info) => info.has(f)));
    assert.deepEqual(sorted(fields.map((f) => f.field)), all, `the fields socks.js gives with "${state}" (StateInfos["${state}"])`);
    assert.deepEqual(sorted(fields.filter((f) => !f.optional).map((f) => f.field)), always, `the fields socks.js always gives with "${state}" (StateInfos["${state}"] without ?)`);
    for (const { field, type } of fields.filter((f) => /^(?:"\w+"|\d+)(?: \| (?:"\w+"|\d+))*$/.test(f.type))) {
      assert.deepEqual(sorted(type.split(" | ")), sorted(infos.filter((info) => info.has(field)).map((info) => info.get(field))), `the values of "${state}"'s ${field}`);
    }
  }
  const states = sorted([...js.matchAll(/_(?:emitState|finish)\("(\w+)"/g)].map((m) => m[1]));
  assert.deepEqual(sorted([...dts.match(/export type State =([^;]*);/)[1].matchAll(/"(\w+)"/g)].map((m) => m[1])), states, "State");
  const picked = dts.match(/export const DEFAULTS: \{\s*readonly \[K in ([^\]]*)\]/)[1];
  assert.deepEqual(sorted([...picked.matchAll(/"(\w+)"/g)].map((m) => m[1])), sorted(Object.keys(DEFAULTS)), "DEFAULTS");
});

test("offline: the client waits for the network without spending attempts, then dials once", async () => {
  // A browser's navigator.onLine and its online event on window.
  const net = new EventTarget();
  let listeners = 0;
  const saved = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  let onLine = true;
  Object.defineProperty(globalThis, "navigator", { configurable: true, get: () => ({ onLine }) });
  globalThis.addEventListener = (type, fn) => {
    listeners++;
    net.addEventListener(type, fn);
  };
  globalThis.removeEventListener = (type, fn) => {
    listeners--;
    net.removeEventListener(type, fn);
  };
  try {
    const { c, states } = await opened({ maxAttempts: 2 });
    onLine = false;
    latest().serverClose(1006); // the network went
    // Offline, the wait is the longest backoff step (random 0.5: three
    // quarters of maxBackoffMs), whatever the attempt.
    assert.equal(states.at(-1).state, "reconnecting");
    assert.equal(states.at(-1).delay, (DEFAULTS.maxBackoffMs * 3) / 4);
    mock.timers.tick(states.at(-1).delay - 1);
    await flush();
    assert.equal(FakeWebSocket.all.length, 1, "no handshake while offline before the longest backoff step");
    onLine = true;
    net.dispatchEvent(new Event("online"));
    net.dispatchEvent(new Event("online"));
    mock.timers.tick(DEFAULTS.backoffMs); // a jittered delay (see "back online" below)
    await flush();
    assert.equal(FakeWebSocket.all.length, 2, "one handshake when the network is back");
    // A handshake that fails because the network went meanwhile does not count either.
    onLine = false;
    latest().serverClose(1006);
    onLine = true;
    net.dispatchEvent(new Event("online"));
    mock.timers.tick(60_000);
    await flush();
    latest().serverClose(1006); // counts: 1 of 2
    mock.timers.tick(60_000);
    await flush();
    latest().serverOpen();
    assert.deepEqual(states.slice(-2).map((s) => s.state), ["open", "resync"]);
    // Closing while it waits for the network leaves no listener.
    onLine = false;
    latest().serverClose(1006);
    mock.timers.tick(60_000);
    await flush();
    assert.equal(listeners, 3, "online, pagehide and pageshow");
    c.close();
    assert.equal(listeners, 0, "close() removes the online listener");
    assert.equal(running.size, 0);
  } finally {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
    if (saved) Object.defineProperty(globalThis, "navigator", saved);
    else delete globalThis.navigator;
  }
});

test("a browser that says it is offline while its network works (navigator.onLine false: a VPN, a known Chrome bug) still connects: it dials once per longest backoff step, uncounted, until one opens", async () => {
  await withPage(async (page) => {
    page.onLine = false; // and stays so: no online event ever comes
    const { c, states } = client({ getChatterId: async () => "sc_fresh" });
    await flush();
    assert.equal(FakeWebSocket.all.length, 0, "no handshake at once while offline");
    assert.equal(c.state, "connecting");
    // random 0.5: three quarters of maxBackoffMs.
    const longest = (DEFAULTS.maxBackoffMs * 3) / 4;
    mock.timers.tick(longest - 1);
    await flush();
    assert.equal(FakeWebSocket.all.length, 0);
    mock.timers.tick(1);
    await flush();
    assert.equal(FakeWebSocket.all.length, 1, "dialled after the longest backoff step, offline or not");
    // Truly offline: every handshake fails, none counts, the client never
    // fails, and the dials stay one per longest step.
    for (let i = 0; i < DEFAULTS.maxAttempts * 2; i++) {
      latest().serverClose(1006);
      await flush();
      const s = states.at(-1);
      assert.equal(s.state, "reconnecting", `attempt ${i}: not failed, being offline is not a refusal`);
      assert.equal(s.delay, longest, `attempt ${i}: the longest step while offline`);
      const n = FakeWebSocket.all.length;
      mock.timers.tick(s.delay - 1);
      await flush();
      assert.equal(FakeWebSocket.all.length, n);
      mock.timers.tick(1);
      await flush();
      assert.equal(FakeWebSocket.all.length, n + 1);
    }
    // A failed handshake asks getChatterId for a fresh ID, offline too: an
    // ID the gateway refuses is not dialled with for ever.
    assert.equal(latest().url.searchParams.get("id"), "sc_fresh");
    // The network worked all along: the handshake opens.
    latest().serverOpen();
    assert.equal(c.state, "open");
    assert.deepEqual(states.slice(-2).map((s) => s.state), ["open", "resync"]);
    c.close();
    assert.equal(running.size, 0);
  });
});

test("offline with no chatter ID yet: a getChatterId that fails for want of a network does not count either, and the client connects once the network is back", async () => {
  const errors = mock.method(console, "error", () => {});
  try {
    await withPage(async (page) => {
      page.onLine = false;
      const getChatterId = async () => {
        if (!page.onLine) throw new TypeError("Failed to fetch");
        return "sc_fresh";
      };
      const { c, states } = client({ chatterId: undefined, getChatterId });
      await flush();
      for (let i = 0; i < DEFAULTS.maxAttempts * 2; i++) {
        mock.timers.tick(DEFAULTS.maxBackoffMs);
        await flush();
      }
      assert.equal(FakeWebSocket.all.length, 0, "no handshake without an ID");
      assert.equal(c.state, "reconnecting", "not failed: being offline is not a refusal");
      page.online();
      mock.timers.tick(DEFAULTS.backoffMs);
      await flush();
      assert.equal(latest().url.searchParams.get("id"), "sc_fresh");
      latest().serverOpen();
      assert.deepEqual(states.slice(-2).map((s) => s.state), ["open", "resync"]);
      c.close();
    });
  } finally {
    errors.mock.restore();
  }
});

test("offline does not hold back a gateway on this machine: socks serve on 127.0.0.1 is dialled without a network, and its failed handshakes count", async () => {
  // A browser says it is offline (navigator.onLine false) when no network
  // but loopback is up: a laptop on a plane, with socks serve on
  // 127.0.0.1. The page loads from it, yet socks.js waited for an online
  // event that never came, "connecting" for ever.
  await withPage(async (page) => {
    page.onLine = false;
    for (const url of ["ws://127.0.0.1:8765/", "ws://localhost:8765/", "ws://[::1]:8765/", "ws://127.1.2.3/"]) {
      const { c, states } = client({ url, maxAttempts: 2 });
      await flush();
      assert.equal(FakeWebSocket.all.at(-1).url.origin, new URL(url).origin, `${url}: dialled while offline`);
      latest().serverOpen();
      assert.equal(c.state, "open", url);
      latest().serverClose(1001, "going away");
      for (let i = 0; i < 2; i++) {
        mock.timers.tick(states.at(-1).delay);
        await flush();
        latest().serverClose(1006); // socks serve is down: counts
      }
      assert.equal(c.state, "failed", `${url}: its refusals count while offline`);
      c.close();
    }
    // A gateway elsewhere still waits for the network.
    const n = FakeWebSocket.all.length;
    const far = client({ url: "wss://abc.execute-api.eu-west-1.amazonaws.com/prod" });
    await flush();
    assert.equal(FakeWebSocket.all.length, n, "no handshake to a remote gateway while offline");
    assert.equal(far.c.state, "connecting");
    far.c.close();
    assert.equal(page.listeners.window, 0);
  });
});

test("a gateway on this machine is exactly what internal/loopback.Name takes (localhost in any case, also as \"localhost.\", 127/8, ::1, ::ffff:127.x.x.x): dialled while offline; a name under localhost is not, as socks serve refuses it as a Host", async () => {
  // The hosts of internal/loopback's TestName, as a URL's host. A
  // browser resolves "localhost." to loopback itself, and dials an
  // IPv4-mapped 127.x.x.x over loopback: all reach socks serve with no
  // network. A name under localhost ("app.localhost") is one only some
  // browsers resolve themselves (others ask the system's resolver, which
  // may ask DNS), and socks serve refuses it as the live page's Host (a
  // DNS-rebinding guard): it used to be dialled while offline, and its
  // failed handshakes counted towards "failed". Names that only end like
  // one are not this machine either.
  const here = [
    "ws://localhost:8765/", "ws://LOCALHOST:8765/", "ws://localhost.:8765/", "ws://Localhost.:8765/",
    "ws://127.0.0.1:8765/", "ws://127.9.9.9/", "ws://127.1/", "ws://[::1]:8765/", "ws://[0:0:0:0:0:0:0:1]/",
    "ws://[::ffff:127.0.0.1]:8765/", "ws://[::ffff:127.9.9.9]/",
  ];
  const far = [
    "ws://app.localhost:8765/", "ws://app.localhost.:8765/", "ws://a.b.localhost/",
    "ws://localhost..:8765/", "ws://localhost.example/", "ws://notlocalhost/", "ws://127.0.0.1.example/",
    "ws://10.0.0.1/", "ws://0.0.0.0/", "ws://[::ffff:10.0.0.1]/", "ws://[::2]/", "ws://.localhost/", "ws://a..localhost/",
    "wss://abc.execute-api.eu-west-1.amazonaws.com/prod",
  ];
  await withPage(async (page) => {
    page.onLine = false;
    for (const url of [...here, ...far]) {
      const n = FakeWebSocket.all.length;
      const { c } = client({ url });
      await flush();
      assert.equal(FakeWebSocket.all.length - n, here.includes(url) ? 1 : 0, `${url}: ${here.includes(url) ? "not dialled" : "dialled"} while offline`);
      c.close();
    }
  });
});

test("a client that failed tries once more when the network comes back or the page is shown again (visibilitychange, pageshow): one handshake, failed again at once if it does not open, open and resync if it does; one the browser refused the URL of stays failed", async () => {
  await withPage(async (page) => {
    const { c, states } = client({ maxAttempts: 2 });
    await flush();
    latest().serverClose(1006);
    mock.timers.tick(states.at(-1).delay);
    await flush();
    latest().serverClose(1006);
    assert.equal(c.state, "failed");
    assert.equal(states.at(-1).attempt, 2);
    mock.timers.tick(10 * 60 * 1000);
    await flush();
    assert.equal(FakeWebSocket.all.length, 2, "failed: no dial of its own");
    let n = 2;
    for (const [what, wake] of [
      ["visibilitychange", () => page.show()],
      ["pageshow", () => page.pageshow(true)],
      ["online", () => page.online()],
    ]) {
      page.hide(); // hidden: nothing
      // Into the back/forward cache, or frozen: nothing is open to close.
      page.pagehide(true);
      page.freeze();
      await flush();
      assert.equal(c.state, "failed", `${what}: a hidden page does not try`);
      // Several events at once are one try.
      wake();
      wake();
      const s = states.at(-1);
      assert.equal(s.state, "reconnecting", what);
      assert.ok(s.delay <= DEFAULTS.backoffMs, `${what}: within the first backoff step, not ${s.delay}`);
      page.show();
      page.online();
      mock.timers.tick(DEFAULTS.backoffMs);
      await flush();
      assert.equal(FakeWebSocket.all.length, ++n, `${what}: one handshake`);
      if (what !== "online") {
        latest().serverClose(1006);
        await flush();
        assert.equal(c.state, "failed", `${what}: failed again at once`);
        assert.equal(states.at(-1).attempt, n, `${what}: the handshakes in a row that never opened`);
        mock.timers.tick(10 * 60 * 1000);
        await flush();
        assert.equal(FakeWebSocket.all.length, n, `${what}: no dial of its own after failing again`);
      }
    }
    latest().serverOpen();
    assert.deepEqual(states.slice(-2).map((s) => s.state), ["open", "resync"]);
    // It counts from 0 again: a drop is retried maxAttempts times.
    latest().serverClose(1006);
    mock.timers.tick(states.at(-1).delay);
    await flush();
    latest().serverClose(1006);
    assert.equal(c.state, "reconnecting", "the count started over once a connection opened");
    c.close();
    assert.equal(c.state, "closed");
    assert.equal(page.listeners.window + page.listeners.document, 0);
    assert.equal(running.size, 0);
    // close() after failed stops it listening, and says closed.
    const r = client({ maxAttempts: 1 });
    await flush();
    latest().serverClose(1006);
    assert.equal(r.c.state, "failed");
    r.c.close();
    assert.deepEqual(r.states.slice(-2).map((s) => s.state), ["failed", "closed"]);
    assert.equal(page.listeners.window + page.listeners.document, 0);
    n = FakeWebSocket.all.length;
    page.online();
    page.show();
    mock.timers.tick(60_000);
    await flush();
    assert.equal(FakeWebSocket.all.length, n, "closed: no try");
    // A URL the browser refuses will not get better: failed for good.
    class Refusing extends FakeWebSocket {
      constructor() {
        throw new SyntaxError("The URL's scheme must be either 'ws' or 'wss'");
      }
    }
    const errors = mock.method(console, "error", () => {});
    try {
      const bad = client({ WebSocket: Refusing });
      await flush();
      assert.equal(bad.c.state, "failed");
      assert.equal(page.listeners.window + page.listeners.document, 0, "refused URL: nothing listens");
      page.online();
      page.show();
      await flush();
      assert.equal(bad.states.at(-1).state, "failed");
    } finally {
      errors.mock.restore();
    }
  });
});

test("API Gateway's error frame for a failed route is reported, not delivered, and answers the oldest action waiting for a reply", async () => {
  // API Gateway answers an action whose function failed with
  // {"message":"Internal server error","connectionId":...,"requestId":...},
  // and one without a route (and no $default) with "Forbidden".
  const gatewayError = (message) => JSON.stringify({ message, connectionId: "L0SM9cOFvHcCIhw=", requestId: "L0SM9FRXvHcFoWg=" });
  const errors = mock.method(console, "error", () => {});
  const { c, states } = await opened();
  const got = [];
  c.onMessage((b) => got.push(b));
  const ws = latest();
  c.subscribe("news");
  await flush(); // one frame each
  c.subscribe("plays");
  await flush();
  ws.serverSend(gatewayError("Internal server error")); // news: the store was down
  ws.serverSend('{"type":"error","error":"this chatter ID may not follow plays; it may follow only updates, news","topics":["updates"]}');
  assert.deepEqual(got, [], "the error frame is not a message");
  // The refusal is the answer to plays: news failed, it was not refused.
  assert.deepEqual(c.topics, ["updates", "news"]);
  assert.equal(errors.mock.callCount(), 2);
  assert.match(String(errors.mock.calls[0].arguments[0]), /Internal server error.*L0SM9FRXvHcFoWg=/);
  assert.match(String(errors.mock.calls[0].arguments[0]), /news/);
  assert.match(String(errors.mock.calls[1].arguments[0]), /may not follow plays/);
  // A ping the gateway has no route for: it answered, the link is alive.
  mock.timers.tick(DEFAULTS.heartbeatMs);
  ws.serverSend(gatewayError("Forbidden"));
  mock.timers.tick(DEFAULTS.heartbeatMs);
  assert.equal(ws.closedWith, null, "not closed for a missing pong");
  ws.serverSend(gatewayError("Forbidden"));
  // Nothing waits for a reply now: a published body shaped like a reply is a message.
  ws.serverSend('{"type":"error","error":"job 7 failed"}');
  // Only those three keys, all strings, make the gateway's error frame.
  ws.serverSend('{"message":"hi","connectionId":"a","requestId":"b","from":"Ann"}');
  ws.serverSend('{"message":"hi","connectionId":"a"}');
  ws.serverSend('{"message":"hi","connectionId":"a","requestId":7}');
  assert.deepEqual(got, [
    { type: "error", error: "job 7 failed" },
    { message: "hi", connectionId: "a", requestId: "b", from: "Ann" },
    { message: "hi", connectionId: "a" },
    { message: "hi", connectionId: "a", requestId: 7 },
  ]);
  assert.equal(errors.mock.callCount(), 4, "each error frame is reported");
  ws.serverSend(gatewayError("Internal server error")); // with nothing waiting: still the gateway's, reported
  assert.equal(got.length, 4);
  assert.equal(errors.mock.callCount(), 5);
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open"]);
  errors.mock.restore();
  c.close();
});

test("a gateway that accepts and closes at once is retried with growing delays; the backoff starts over only after a connection stayed open for maxBackoffMs", async () => {
  // A backend that deletes the geek's connections, or a cap past the
  // handshake: every handshake opens, every connection closes at once.
  const { c, states } = await opened({ random: () => 0, maxAttempts: 3 });
  const delays = [];
  for (let i = 0; i < 8; i++) {
    latest().serverClose(1000, "connection deleted");
    const s = states.at(-1);
    assert.equal(s.state, "reconnecting");
    assert.equal(s.attempt, i + 1);
    delays.push(s.delay);
    mock.timers.tick(s.delay);
    await flush();
    latest().serverOpen();
  }
  // random 0: half the ceiling, which doubles from backoffMs to maxBackoffMs.
  assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 8000, 15_000, 15_000]);
  assert.equal(c.state, "open", "not failed: the gateway accepted every handshake");
  // Open for less than maxBackoffMs: the backoff goes on.
  mock.timers.tick(DEFAULTS.maxBackoffMs - 1);
  latest().serverClose(1001, "Going away");
  assert.equal(states.at(-1).attempt, 9);
  assert.equal(states.at(-1).delay, 15_000);
  mock.timers.tick(15_000);
  await flush();
  latest().serverOpen();
  // Open for maxBackoffMs: it starts over.
  mock.timers.tick(DEFAULTS.maxBackoffMs);
  latest().serverClose(1001, "Going away");
  assert.equal(states.at(-1).attempt, 1);
  assert.equal(states.at(-1).delay, 250);
  assert.equal(states.filter((s) => s.state === "resync").length, 9, "every reopen resyncs");
  c.close();
  assert.equal(running.size, 0);
});

test("a published body shaped like a reply is a message unless an action of its kind awaits one: a ping waiting for its pong takes only a pong", async () => {
  const errors = mock.method(console, "error", () => {});
  const { c, states } = await opened();
  const got = [];
  c.onMessage((b) => got.push(b));
  const ws = latest();
  mock.timers.tick(DEFAULTS.heartbeatMs); // a ping waits for its pong
  assert.deepEqual(ws.sent, [{ action: "ping" }]);
  ws.serverSend('{"type":"error","error":"job 7 failed"}'); // published by the site
  ws.serverSend('{"type":"subscribed","topics":["jobs"]}'); // published too
  ws.serverSend('{"type":"pong","time":"2026-11-29T12:00:00Z"}'); // the gateway's answer
  assert.deepEqual(got, [
    { type: "error", error: "job 7 failed" },
    { type: "subscribed", topics: ["jobs"] },
  ]);
  assert.equal(errors.mock.callCount(), 0, "nothing was refused");
  mock.timers.tick(DEFAULTS.heartbeatMs);
  assert.equal(ws.closedWith, null, "the pong was counted");
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open"]);
  errors.mock.restore();
  c.close();
});

test("a listener removed by another during a dispatch is not called for it, as with addEventListener; one added is called from the next", async () => {
  const { c } = await opened();
  const got = [];
  // A component that unmounts on "logout" removes the other's listeners.
  let offB, offMsgB, offStateB;
  c.on("logout", () => {
    got.push("a");
    offB();
    offMsgB();
    c.on("logout", () => got.push("late"));
  });
  offB = c.on("logout", () => got.push("b"));
  c.onMessage(() => offMsgB());
  offMsgB = c.onMessage(() => got.push("message b"));
  c.onState(() => offStateB());
  offStateB = c.onState((s) => got.push("state b " + s));
  latest().serverSend('"logout"');
  assert.deepEqual(got, ["a"]);
  latest().serverSend('"logout"');
  assert.deepEqual(got, ["a", "a", "late"]);
  c.close();
  assert.deepEqual(got, ["a", "a", "late"], "a state listener removed during the dispatch of closed");
});

test("a getChatterId answer that is no chatter ID (an error page's text) is a failed handshake, asked again, and never shown", async () => {
  const secret = "<html>502 Bad Gateway sc_secret</html>";
  const answers = [secret, "sc_good"];
  const reported = [];
  const savedReport = globalThis.reportError;
  globalThis.reportError = (err) => reported.push(String(err && err.message));
  try {
    const { c, states } = client({ chatterId: undefined, protocol: "header", getChatterId: async () => answers.shift() });
    await flush();
    assert.equal(FakeWebSocket.all.length, 0, "no socket made with that text as a subprotocol");
    assert.equal(c.state, "reconnecting", "one bad answer does not end the client");
    mock.timers.tick(states.at(-1).delay);
    await flush();
    assert.deepEqual(latest().protocols, ["socks", "sc_good"]);
    latest().serverOpen();
    assert.equal(c.state, "open");
    const shown = JSON.stringify([states, reported]);
    assert.ok(!shown.includes("sc_secret"), `the answer was shown: ${shown}`);
    assert.ok(reported.some((r) => r.includes("getChatterId")), `reported ${JSON.stringify(reported)}`);
    c.close();
  } finally {
    globalThis.reportError = savedReport;
  }
});

test("with protocol header, connect refuses a chatter ID that cannot be one (pasted with a space in it) without showing it", async () => {
  // The browser's own SyntaxError would name it ("The subprotocol 'sc_abc def' is invalid").
  assert.throws(() => client({ chatterId: "sc_abc def", protocol: "header" }), (err) => {
    assert.ok(err instanceof TypeError);
    assert.match(err.message, /chatterId has a character no chatter ID has/);
    assert.ok(!err.message.includes("sc_abc"), err.message);
    return true;
  });
  await flush();
  assert.equal(FakeWebSocket.all.length, 0);
});

test("a WebSocket constructor that refuses the URL with the URL in its message (as WebKit-based runtimes such as Bun do) does not show the chatter ID in the reason or the report", async () => {
  // Bun (WebKit's words): "Wrong url scheme for WebSocket " + the URL, whose ?id= is the
  // chatter ID with protocol "query". A page shows info.reason (the live
  // page does), and reportError goes to the console and error trackers.
  class WebKitWebSocket extends FakeWebSocket {
    static refuse = false;
    constructor(url, protocols) {
      if (!/^wss?:/.test(url) || WebKitWebSocket.refuse) throw new SyntaxError(`Wrong url scheme for WebSocket ${url}`);
      super(url, protocols);
    }
  }
  const errors = mock.method(console, "error", () => {});
  try {
    for (const [url, start] of [["ftp://gateway.test/prod", "connect"], ["ws://gateway.test/prod", "renewal"]]) {
      errors.mock.resetCalls();
      WebKitWebSocket.refuse = false;
      const { c, states } = client({ url, WebSocket: WebKitWebSocket, maxDurationMs: 20_000 });
      await flush();
      if (start === "renewal") {
        latest().serverOpen();
        WebKitWebSocket.refuse = true; // from the renewal on
        mock.timers.tick(15_000);
        await flush();
        latest().serverClose(1001, "Going away"); // the cap
        mock.timers.tick(states.at(-1).delay);
        await flush();
      }
      assert.equal(c.state, "failed", start);
      const reason = states.at(-1).reason;
      assert.match(reason, /Wrong url scheme/, `${start}: the reason says what the browser said`);
      assert.doesNotMatch(reason, /sc_first/, `${start}: the reason shows the chatter ID: ${reason}`);
      assert.ok(errors.mock.callCount() > 0, `${start}: reported`);
      for (const call of errors.mock.calls) {
        const text = call.arguments.map((a) => String(a?.stack ?? a) + String(a?.message ?? "")).join(" ");
        assert.doesNotMatch(text, /sc_first/, `${start}: the report shows the chatter ID: ${text}`);
      }
    }
  } finally {
    errors.mock.restore();
  }
});

test("failed says why in words when the handshakes never opened: a refused (expired, revoked) chatter ID or a gateway that is down", async () => {
  const { c, states } = client({ maxAttempts: 2 });
  await flush();
  latest().serverClose(1006);
  mock.timers.tick(states.at(-1).delay);
  await flush();
  latest().serverClose(1006);
  await flush();
  assert.equal(c.state, "failed");
  const info = states.at(-1);
  assert.equal(info.code, 1006);
  assert.match(info.reason, /2 handshakes in a row never opened/);
  assert.match(info.reason, /expired|revoked/);
  assert.match(info.reason, /gateway is down/);
  // The gateway refuses a connect for more than its chatter ID (routes
  // admit: 400, 401, 403, 429, 503), and a browser sees none of them: the
  // reason names each, so that a geek at its connection limit is not sent
  // to issue chatter IDs, and says where the gateway says which.
  for (const cause of [/a topic it may not follow/, /connection limit/, /origin/, /log/]) assert.match(info.reason, cause);

  // A getChatterId that never gives an ID: no handshake was made, and failed says that instead.
  const errors = mock.method(console, "error", () => {});
  const r = client({ chatterId: undefined, maxAttempts: 2, getChatterId: async () => { throw new Error("401 logged out"); } });
  await flush();
  mock.timers.tick(r.states.at(-1).delay);
  await flush();
  errors.mock.restore();
  assert.equal(r.c.state, "failed");
  assert.equal(FakeWebSocket.all.length, 2, "no socket without an ID");
  assert.match(r.states.at(-1).reason, /2 attempts in a row never opened, the last without a chatter ID: getChatterId failed or answered none/);
});

test("when the network comes back or the page is shown again, an open connection is checked: no pong within openTimeoutMs reconnects", async () => {
  // A laptop that slept or changed networks: the socket looks open, the
  // link under it is gone, and the heartbeat would notice only minutes later.
  const win = new EventTarget();
  const doc = new EventTarget();
  doc.visibilityState = "visible";
  let docListeners = 0;
  const [add, remove] = [doc.addEventListener.bind(doc), doc.removeEventListener.bind(doc)];
  doc.addEventListener = (...a) => (docListeners++, add(...a));
  doc.removeEventListener = (...a) => (docListeners--, remove(...a));
  const saved = { add: globalThis.addEventListener, remove: globalThis.removeEventListener, document: globalThis.document };
  globalThis.addEventListener = win.addEventListener.bind(win);
  globalThis.removeEventListener = win.removeEventListener.bind(win);
  globalThis.document = doc;
  try {
    const { c, states } = await opened({ openTimeoutMs: 1000 });
    const ws = latest();
    // random 0.5: each check waits half of backoffMs (see the jittered
    // wake-up below), and each beat comes seven eighths of heartbeatMs
    // after the last (see the jittered heartbeat below).
    const wait = DEFAULTS.backoffMs / 2;
    const beat = (7 * DEFAULTS.heartbeatMs) / 8;
    win.dispatchEvent(new Event("online"));
    mock.timers.tick(wait);
    assert.deepEqual(ws.sent, [{ action: "ping" }], "a ping after the jittered wait");
    win.dispatchEvent(new Event("online"));
    mock.timers.tick(wait);
    assert.equal(ws.sent.length, 1, "one check at a time");
    ws.serverSend('{"type":"pong","time":"2026-11-29T12:00:00Z"}');
    mock.timers.tick(1000 - wait);
    assert.equal(ws.closedWith, null, "answered: the connection carries");
    // The heartbeat goes on as before, and the check did not make it judge early.
    mock.timers.tick(beat - 1000 - wait - 1);
    assert.equal(ws.sent.length, 1);
    mock.timers.tick(1);
    assert.equal(ws.sent.length, 2);
    assert.equal(ws.closedWith, null);
    ws.serverSend('{"type":"pong","time":"2026-11-29T12:00:00Z"}');

    // Hidden, then shown again; a heartbeat that falls inside the check
    // leaves the judging to the check.
    doc.visibilityState = "hidden";
    doc.dispatchEvent(new Event("visibilitychange"));
    assert.equal(ws.sent.length, 2, "no check when hidden");
    mock.timers.tick(beat - 500 - wait);
    doc.visibilityState = "visible";
    doc.dispatchEvent(new Event("visibilitychange"));
    mock.timers.tick(wait);
    assert.equal(ws.sent.length, 3);
    mock.timers.tick(500);
    assert.equal(ws.sent.length, 3, "the beat inside the check sends no ping of its own");
    assert.equal(ws.closedWith, null, "the beat inside the check does not judge it");
    mock.timers.tick(499);
    assert.equal(ws.closedWith, null);
    mock.timers.tick(1);
    assert.equal(ws.closedWith?.code, 4000);
    assert.deepEqual(states.at(-1), { state: "reconnecting", attempt: 1, delay: 375, code: 4000, reason: "no pong" });
    assert.equal(docListeners, 3, "visibilitychange, freeze and resume");
    c.close();
    assert.equal(running.size, 0);
    assert.equal(docListeners, 0, "close() removes the visibilitychange listener");
  } finally {
    globalThis.addEventListener = saved.add;
    globalThis.removeEventListener = saved.remove;
    globalThis.document = saved.document;
    if (!saved.add) delete globalThis.addEventListener;
    if (!saved.remove) delete globalThis.removeEventListener;
    if (!saved.document) delete globalThis.document;
  }
});

test("back online, clients that waited for the network dial after their own jittered delay within the first backoff step, not all at once", async () => {
  // Every tab of every browser behind one network blip gets the online
  // event at the same moment: without jitter they would all dial the
  // gateway in the same instant.
  const net = new EventTarget();
  const saved = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  let onLine = true;
  Object.defineProperty(globalThis, "navigator", { configurable: true, get: () => ({ onLine }) });
  globalThis.addEventListener = net.addEventListener.bind(net);
  globalThis.removeEventListener = net.removeEventListener.bind(net);
  try {
    const tabs = [];
    for (const r of [0.1, 0.5, 0.9]) {
      const { c, states } = await opened({ random: () => r });
      tabs.push({ c, states, ws: latest(), r });
    }
    onLine = false;
    for (const t of tabs) t.ws.serverClose(1006); // the network went
    // Offline, each waits the longest backoff step (see "a browser that
    // says it is offline"), over 15 s.
    mock.timers.tick(10_000);
    await flush();
    assert.equal(FakeWebSocket.all.length, 3, "no handshake while offline");
    onLine = true;
    net.dispatchEvent(new Event("online"));
    await flush();
    assert.equal(FakeWebSocket.all.length, 3, "no tab dials the instant the network is back");
    // Each waits random * backoffMs: 50, 250 and 450 ms.
    const dialed = [];
    for (let ms = 1; ms <= DEFAULTS.backoffMs; ms++) {
      mock.timers.tick(1);
      await flush();
      while (dialed.length < FakeWebSocket.all.length - 3) dialed.push(ms);
    }
    assert.deepEqual(dialed, [50, 250, 450]);
    for (const ws of FakeWebSocket.all.slice(3)) ws.serverOpen();
    for (const t of tabs) t.c.close();
    assert.equal(running.size, 0);
  } finally {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
    if (saved) Object.defineProperty(globalThis, "navigator", saved);
    else delete globalThis.navigator;
  }
});

test("a getChatterId that answers {chatterId, expiresAt} is asked again only when that ID had opened and then failed a handshake, or is near expiry: a run of failed handshakes does not pile up IDs", async () => {
  // A gateway whose handshakes keep failing (down behind a proxy, the
  // geek at its connection cap) must not be handed a new 15-minute ID per
  // attempt: the geek's live IDs are capped (--max-live), and it would be
  // locked out.
  let now = Date.parse("2026-11-30T12:00:00Z");
  const clock = mock.method(Date, "now", () => now);
  const issued = [];
  const getChatterId = async () => {
    issued.push(`sc_id${issued.length + 1}`);
    return { chatterId: issued.at(-1), expiresAt: new Date(now + 15 * 60 * 1000).toISOString() };
  };
  try {
    const { c, states } = client({ chatterId: undefined, getChatterId, maxAttempts: 10 });
    await flush();
    while (states.at(-1).state !== "failed") {
      latest().serverClose(1006); // the handshake never opened
      if (states.at(-1).state === "failed") break;
      mock.timers.tick(states.at(-1).delay);
      await flush();
    }
    assert.equal(FakeWebSocket.all.length, 10);
    assert.deepEqual(issued, ["sc_id1"], "one ID for the whole run");
    assert.ok(FakeWebSocket.all.every((ws) => ws.url.searchParams.get("id") === "sc_id1"));
    c.close();

    // An ID that opened a connection and then fails a handshake may have
    // been revoked (or the gateway's store wiped): one fresh ID, then that
    // one is used for the rest of the run.
    issued.length = 0;
    const r = client({ chatterId: undefined, getChatterId, maxAttempts: 10 });
    await flush();
    latest().serverOpen();
    latest().serverClose(1001, "going away");
    for (let i = 0; i < 6; i++) {
      mock.timers.tick(r.states.at(-1).delay);
      await flush();
      latest().serverClose(1006);
    }
    assert.deepEqual(issued, ["sc_id1", "sc_id2"]);
    // Near its expiry the ID is not used for another handshake.
    now += 14 * 60 * 1000 + 30 * 1000;
    mock.timers.tick(r.states.at(-1).delay);
    await flush();
    assert.deepEqual(issued, ["sc_id1", "sc_id2", "sc_id3"]);
    assert.equal(latest().url.searchParams.get("id"), "sc_id3");
    latest().serverOpen();

    // A renewal reuses an ID still valid for long enough, and asks for a
    // new one near the ID's expiry.
    r.c.close();
    issued.length = 0;
    const n = client({ chatterId: undefined, getChatterId, maxDurationMs: 4 * 60 * 1000 });
    await flush();
    latest().serverOpen();
    mock.timers.tick(3 * 60 * 1000); // the renewal
    await flush();
    assert.deepEqual(issued, ["sc_id1"], "the renewal keeps the ID");
    assert.equal(latest().url.searchParams.get("id"), "sc_id1");
    latest().serverOpen();
    now += 14 * 60 * 1000 + 30 * 1000;
    mock.timers.tick(3 * 60 * 1000); // the next renewal
    await flush();
    assert.deepEqual(issued, ["sc_id1", "sc_id2"]);
    assert.equal(latest().url.searchParams.get("id"), "sc_id2");
    n.c.close();
  } finally {
    clock.mock.restore();
  }
});

test("a reconnect after a drop does not dial with an ID getChatterId said is expired or near expiry: it asks for a fresh one first", async () => {
  // The connection outlived its chatter ID (checked at the upgrade only);
  // the gateway then dropped it. A handshake with that ID is refused, an
  // attempt spent and a refusal in the gateway's log for nothing.
  let now = Date.parse("2026-11-30T12:00:00Z");
  const clock = mock.method(Date, "now", () => now);
  const issued = [];
  const getChatterId = async () => {
    issued.push(`sc_id${issued.length + 1}`);
    return { chatterId: issued.at(-1), expiresAt: now + 15 * 60 * 1000 };
  };
  try {
    const { c, states } = client({ chatterId: undefined, getChatterId });
    await flush();
    latest().serverOpen();
    // Still valid for long enough: used again.
    latest().serverClose(1001, "going away");
    mock.timers.tick(states.at(-1).delay);
    await flush();
    assert.deepEqual(issued, ["sc_id1"]);
    assert.equal(latest().url.searchParams.get("id"), "sc_id1");
    latest().serverOpen();
    // Past its expiry: a fresh one.
    now += 16 * 60 * 1000;
    latest().serverClose(1001, "going away");
    mock.timers.tick(states.at(-1).delay);
    await flush();
    assert.deepEqual(issued, ["sc_id1", "sc_id2"]);
    assert.equal(latest().url.searchParams.get("id"), "sc_id2");
    latest().serverOpen();
    // Near its expiry: a fresh one too.
    now += 14 * 60 * 1000 + 30 * 1000;
    latest().serverClose(1001, "going away");
    mock.timers.tick(states.at(-1).delay);
    await flush();
    assert.deepEqual(issued, ["sc_id1", "sc_id2", "sc_id3"]);
    assert.equal(latest().url.searchParams.get("id"), "sc_id3");
    c.close();
  } finally {
    clock.mock.restore();
  }
});

test("a reconnect whose getChatterId fails dials with the ID it has while that is not past its expiresAt, and not with one that is: no handshake the gateway refuses", async () => {
  let now = Date.parse("2026-11-30T12:00:00Z");
  const clock = mock.method(Date, "now", () => now);
  const errors = mock.method(console, "error", () => {});
  const issued = [];
  let down = false;
  const getChatterId = async () => {
    if (down) throw new Error("503 the ID service is down");
    issued.push(`sc_id${issued.length + 1}`);
    return { chatterId: issued.at(-1), expiresAt: now + 15 * 60 * 1000 };
  };
  try {
    const { c, states } = client({ chatterId: undefined, getChatterId });
    await flush();
    latest().serverOpen();
    // Near its expiry, not past it: the gateway may still take it.
    now += 14 * 60 * 1000 + 30 * 1000;
    down = true;
    latest().serverClose(1001, "going away");
    mock.timers.tick(states.at(-1).delay);
    await flush();
    assert.equal(latest().url.searchParams.get("id"), "sc_id1", "near expiry: dialled with the ID it has");
    latest().serverOpen();
    // Past its expiry: not dialled with; an attempt without an ID.
    now += 60 * 1000;
    latest().serverClose(1001, "going away");
    const n = FakeWebSocket.all.length;
    mock.timers.tick(states.at(-1).delay);
    await flush();
    assert.equal(FakeWebSocket.all.length, n, "dialled with an ID past its expiresAt");
    assert.equal(states.at(-1).state, "reconnecting");
    assert.equal(states.at(-1).reason, "no chatter ID");
    // The ID service is back: a fresh ID.
    down = false;
    mock.timers.tick(states.at(-1).delay);
    await flush();
    assert.equal(FakeWebSocket.all.length, n + 1);
    assert.equal(latest().url.searchParams.get("id"), "sc_id2");
    c.close();
  } finally {
    clock.mock.restore();
    errors.mock.restore();
  }
});

test("a browser clock hours ahead of the issuer's: an ID getChatterId has just answered is not taken as expired, so a reconnect or a renewal whose getChatterId fails dials with it, not without an ID; said once", async () => {
  // The browser's clock is 3 hours ahead: a fresh ID, valid 15 minutes,
  // looks 2 h 45 min past its expiresAt. It used to be wiped when
  // getChatterId then failed (an attempt without an ID, every attempt
  // until "failed"), and a renewal was never dialled.
  const ahead = 3 * 60 * 60 * 1000;
  const errors = mock.method(console, "error", () => {});
  let down = false;
  let asked = 0;
  const getChatterId = async () => {
    asked++;
    if (down) throw new Error("503 the ID service is down");
    return { chatterId: `sc_id${asked}`, expiresAt: new Date(Date.now() - ahead + 15 * 60 * 1000).toISOString() };
  };
  try {
    // A reconnect after a drop.
    let { c, states } = client({ chatterId: undefined, getChatterId });
    await flush();
    assert.equal(latest().url.searchParams.get("id"), "sc_id1");
    latest().serverOpen();
    down = true;
    latest().serverClose(1001, "going away");
    mock.timers.tick(states.at(-1).delay);
    await flush();
    assert.equal(latest().url.searchParams.get("id"), "sc_id1", "a reconnect dials with the ID it has");
    latest().serverOpen();
    assert.equal(c.state, "open");
    c.close();
    const said = errors.mock.calls.filter((call) => /clock/.test(String(call.arguments[0]?.message)));
    assert.equal(said.length, 1, "the clock is said to be off, once");
    // A renewal.
    down = false;
    asked = 0;
    ({ c, states } = client({ chatterId: undefined, getChatterId, maxDurationMs: 20_000, random: () => 0 }));
    await flush();
    latest().serverOpen();
    down = true;
    const before = FakeWebSocket.all.length;
    mock.timers.tick(15_000); // the renewal: a quarter of the cap before it
    await flush();
    assert.equal(FakeWebSocket.all.length, before + 1, "a renewal is dialled");
    assert.equal(latest().url.searchParams.get("id"), "sc_id1", "a renewal dials with the ID it has");
    assert.equal(latest().readyState, 0, "the renewal's handshake is under way");
    c.close();
  } finally {
    errors.mock.restore();
  }
});

test("a browser clock hours behind the issuer's: a client that failed with an ID it reused (which looks valid for hours) asks getChatterId afresh when it tries once more", async () => {
  const behind = 3 * 60 * 60 * 1000;
  let asked = 0;
  const getChatterId = async () => {
    asked++;
    return { chatterId: `sc_id${asked}`, expiresAt: Date.now() + behind + 15 * 60 * 1000 };
  };
  await withPage(async (page) => {
    const { c, states } = client({ chatterId: undefined, getChatterId, maxAttempts: 2 });
    await flush();
    latest().serverClose(1006); // the gateway is down
    mock.timers.tick(states.at(-1).delay);
    await flush();
    assert.equal(latest().url.searchParams.get("id"), "sc_id1", "kept: a failing gateway does not pile up IDs");
    latest().serverClose(1006);
    assert.equal(c.state, "failed");
    // Twenty minutes on, the ID has expired at the gateway; by this
    // browser's clock it is valid for hours yet.
    mock.timers.tick(20 * 60 * 1000);
    page.show();
    mock.timers.tick(DEFAULTS.backoffMs);
    await flush();
    assert.equal(latest().url.searchParams.get("id"), "sc_id2", "the try after failed asks for a fresh ID");
    latest().serverOpen();
    assert.equal(c.state, "open");
    c.close();
  });
});

test("a getChatterId that answers the same expired ID again and again is asked once per attempt, each after its backoff, and the client fails after maxAttempts", async () => {
  let calls = 0;
  const getChatterId = () => {
    calls++;
    return { chatterId: "sc_stale", expiresAt: Date.now() - 60 * 60 * 1000 };
  };
  const { c, states } = client({ chatterId: undefined, getChatterId, maxAttempts: 4 });
  await flush();
  for (let attempt = 1; c.state !== "failed"; attempt++) {
    assert.ok(attempt <= 4, "more handshakes than maxAttempts");
    assert.equal(calls, attempt, "getChatterId asked more than once for an attempt");
    assert.equal(latest().url.searchParams.get("id"), "sc_stale");
    latest().serverClose(1006); // the gateway refuses it
    await flush();
    if (c.state === "failed") break;
    const { delay } = states.at(-1);
    assert.ok(delay >= DEFAULTS.backoffMs / 2, `attempt ${attempt}: a wait of ${delay} ms`);
    const n = FakeWebSocket.all.length;
    mock.timers.tick(delay - 1);
    await flush();
    assert.equal(FakeWebSocket.all.length, n, "dialled before its backoff");
    mock.timers.tick(1);
    await flush();
  }
  assert.equal(FakeWebSocket.all.length, 4);
  assert.equal(states.at(-1).attempt, 4);
});

test("a renewal whose getChatterId fails does not dial with an ID past its expiresAt: it is tried again after its backoff, and renews once an ID comes", async () => {
  const errors = mock.method(console, "error", () => {});
  const issued = [];
  let down = false;
  const getChatterId = async () => {
    if (down) throw new Error("503 the ID service is down");
    issued.push(`sc_id${issued.length + 1}`);
    return { chatterId: issued.at(-1), expiresAt: Date.now() + 15 * 60 * 1000 };
  };
  try {
    // The renewal comes 23.75 minutes in (random 0.5), the ID expires at 15.
    const { c, states } = client({ chatterId: undefined, getChatterId, heartbeatMs: Infinity, maxDurationMs: 30 * 60 * 1000 });
    await flush();
    latest().serverOpen();
    down = true;
    const n = FakeWebSocket.all.length;
    mock.timers.tick(25 * 60 * 1000);
    await flush();
    assert.equal(FakeWebSocket.all.length, n, "a renewal dialled with an ID past its expiresAt");
    assert.equal(c.state, "open");
    down = false;
    mock.timers.tick(DEFAULTS.maxBackoffMs);
    await flush();
    assert.equal(FakeWebSocket.all.length, n + 1, "no renewal once getChatterId answered again");
    assert.equal(latest().url.searchParams.get("id"), "sc_id2");
    latest().serverOpen();
    assert.equal(states.at(-1).reason, "renewed");
    c.close();
  } finally {
    errors.mock.restore();
  }
});

// withPage runs fn with a browser's page events on globalThis: window's
// online, pagehide and pageshow events, document's visibilitychange, freeze
// and resume, and navigator.onLine. It counts
// the listeners on each, so that a test can see that none outlives close().
async function withPage(fn) {
  const win = new EventTarget();
  const doc = new EventTarget();
  const listeners = { window: 0, document: 0 };
  const counted = (target, name) => {
    const [add, remove] = [target.addEventListener.bind(target), target.removeEventListener.bind(target)];
    return [(...a) => (listeners[name]++, add(...a)), (...a) => (listeners[name]--, remove(...a))];
  };
  const page = {
    listeners,
    onLine: true,
    visibilityState: "visible",
    show() {
      page.visibilityState = "visible";
      doc.dispatchEvent(new Event("visibilitychange"));
    },
    hide() {
      page.visibilityState = "hidden";
      doc.dispatchEvent(new Event("visibilitychange"));
    },
    online() {
      page.onLine = true;
      win.dispatchEvent(new Event("online"));
    },
    // pagehide and pageshow, persisted: into and out of the back/forward
    // cache (or not: an unload, a first load).
    pagehide(persisted) {
      win.dispatchEvent(Object.assign(new Event("pagehide"), { persisted }));
    },
    pageshow(persisted) {
      win.dispatchEvent(Object.assign(new Event("pageshow"), { persisted }));
    },
    freeze() {
      doc.dispatchEvent(new Event("freeze"));
    },
    resume() {
      doc.dispatchEvent(new Event("resume"));
    },
  };
  Object.defineProperty(doc, "visibilityState", { get: () => page.visibilityState });
  [doc.addEventListener, doc.removeEventListener] = counted(doc, "document");
  const saved = {
    navigator: Object.getOwnPropertyDescriptor(globalThis, "navigator"),
    document: Object.getOwnPropertyDescriptor(globalThis, "document"),
  };
  Object.defineProperty(globalThis, "navigator", { configurable: true, get: () => ({ onLine: page.onLine }) });
  Object.defineProperty(globalThis, "document", { configurable: true, value: doc });
  [globalThis.addEventListener, globalThis.removeEventListener] = counted(win, "window");
  try {
    await fn(page);
  } finally {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
    for (const [k, d] of Object.entries(saved)) {
      if (d) Object.defineProperty(globalThis, k, d);
      else delete globalThis[k];
    }
  }
}

// pingTimes ticks the clock a millisecond at a time for ms and returns, for
// each socket of sockets, the tick at which it sent its first ping (or null).
async function pingTimes(sockets, ms) {
  const before = sockets.map((ws) => ws.sent.length);
  const at = sockets.map(() => null);
  for (let t = 1; t <= ms; t++) {
    mock.timers.tick(1);
    await flush();
    sockets.forEach((ws, i) => {
      if (at[i] === null && ws.sent.slice(before[i]).some((f) => f.action === "ping")) at[i] = t;
    });
  }
  return at;
}

test("when the page is shown again or the network comes back, each open client checks its connection after its own jittered delay within the first backoff step, not all at once", async () => {
  // Every tab of a site that is shown at once (a window restored, a laptop
  // opened), and every browser behind a network that came back, hears the
  // event at the same moment: a ping from each in the same instant is a
  // burst on the gateway's routes, and the reconnects of those whose link
  // died would come in one burst openTimeoutMs later.
  await withPage(async (page) => {
    const tabs = [];
    for (const r of [0.1, 0.5, 0.9]) {
      const { c } = await opened({ random: () => r });
      tabs.push({ c, ws: latest() });
    }
    const sockets = tabs.map((t) => t.ws);
    for (const [what, wake] of [
      ["shown again", () => page.show()],
      ["back online", () => page.online()],
    ]) {
      page.hide();
      wake();
      wake(); // a second event while the first waits: one check
      assert.deepEqual(
        sockets.map((ws) => ws.sent.length),
        sockets.map(() => 0),
        `${what}: no tab pings the instant it hears the event`,
      );
      // Each waits random * backoffMs: 50, 250 and 450 ms.
      assert.deepEqual(await pingTimes(sockets, DEFAULTS.backoffMs), [50, 250, 450], what);
      assert.deepEqual(
        sockets.map((ws) => ws.sent.length),
        sockets.map(() => 1),
        `${what}: one ping each`,
      );
      for (const ws of sockets) {
        ws.serverSend('{"type":"pong","time":"2026-11-30T12:00:00Z"}');
        ws.sent.length = 0;
      }
      mock.timers.tick(DEFAULTS.openTimeoutMs);
      assert.ok(
        sockets.every((ws) => ws.closedWith === null),
        `${what}: answered, every connection carries`,
      );
    }
    // Hidden again before its check: the pending check still runs (the
    // link may be gone either way) and close() takes it with the rest.
    page.show();
    for (const t of tabs) t.c.close();
    assert.equal(running.size, 0);
    assert.deepEqual(page.listeners, { window: 0, document: 0 });
  });
});

test("clients that opened together renew at their own random time, from renewBeforeMs to half as much again before the cap, not all at once every two hours", async () => {
  // After a gateway restart every client reconnects within a second or
  // two. A renewal at a fixed time after open would bring those new
  // connects back in the same burst every maxDurationMs, for ever; a
  // random time of each spreads them further at every renewal.
  const cap = 40 * 60 * 1000;
  const before = DEFAULTS.renewBeforeMs;
  const tabs = [];
  for (const [i, r] of [0, 0.5, 0.999].entries()) {
    const { c } = await opened({ random: () => r, chatterId: `sc_tab${i}`, maxDurationMs: cap, heartbeatMs: 2 * cap });
    tabs.push({ c, id: `sc_tab${i}`, r });
  }
  const renewedAt = tabs.map(() => null);
  mock.timers.tick(cap - 1.5 * before - 1);
  await flush();
  assert.equal(FakeWebSocket.all.length, 3, "no renewal earlier than renewBeforeMs and a half before the cap");
  for (let t = cap - 1.5 * before; t <= cap - before; t += 1000) {
    mock.timers.tick(t === cap - 1.5 * before ? 1 : 1000);
    await flush();
    tabs.forEach((tab, i) => {
      const n = FakeWebSocket.all.filter((ws) => ws.url.searchParams.get("id") === tab.id).length;
      if (n > 1 && renewedAt[i] === null) renewedAt[i] = t;
    });
  }
  // random r renews at cap - before - r * before / 2, to the second.
  assert.deepEqual(
    renewedAt,
    tabs.map((t) => Math.ceil((cap - before - Math.round((t.r * before) / 2)) / 1000) * 1000),
  );
  for (const t of tabs) t.c.close();
  assert.equal(running.size, 0);
});

test("close() during a handshake closes its socket and leaves no timer at once, before the browser reports the socket closed", async () => {
  // A browser reports the close of a socket still connecting only later
  // (and a handshake the network swallowed, only when it gives up): the
  // handshake's timer must not outlive close() until then.
  const phases = {
    "the first handshake": async () => {
      const r = client();
      await flush();
      return r;
    },
    "a reconnect's handshake": async () => {
      const r = await opened();
      latest().serverClose(1006);
      mock.timers.tick(r.states.at(-1).delay);
      await flush();
      return r;
    },
    "a renewal's handshake": async () => {
      const r = await opened({ maxDurationMs: 20_000 });
      mock.timers.tick(15_000);
      await flush();
      return r;
    },
  };
  for (const [phase, start] of Object.entries(phases)) {
    FakeWebSocket.all = [];
    const { c, states } = await start();
    const opening = latest();
    assert.equal(opening.readyState, 0, `${phase}: a socket is connecting`);
    c.close();
    assert.ok(
      FakeWebSocket.all.every((ws) => ws.closedWith || ws.readyState === 3),
      `${phase}: every socket closed`,
    );
    assert.equal(running.size, 0, `${phase}: ${running.size} timers still running after close()`);
    // The browser's late reports change nothing.
    opening.serverOpen();
    opening.serverClose(1006);
    mock.timers.tick(60_000);
    await flush();
    assert.equal(states.at(-1).state, "closed", phase);
    assert.equal(running.size, 0, phase);
  }
});

test("every close a socks gateway (or another server) sends is followed by a reconnect that asks for the same topics, then resync; the code and reason reach onState", async () => {
  // gateway/gateway.go and docs/protocol.md ("Close codes sent by the local
  // gateway"); API Gateway closes with 1001 "Going away" at the idle
  // timeout and the 2-hour cap, and a browser reports 1006 for a link that
  // broke without a close frame.
  const closes = [
    [1000, "connection deleted"],
    [1001, "Going away"],
    [1001, "going away"],
    [1002, "bad MASK"],
    [1006, ""],
    [1008, "slow consumer"],
    [1008, "too many frames"],
    [1009, "message too big"],
    [1009, "frame too big"],
    [1011, "Internal server error"],
    // And what another server may send: no code, the browser's own for a
    // text frame that is not UTF-8, a code of an application, the longest
    // reason a close frame holds.
    [1005, ""],
    [1007, ""],
    [3000, "unauthorized"],
    [4000, "no pong"],
    [4999, "é".repeat(61) + "x"],
  ];
  for (const [code, reason] of closes) {
    const what = `${code} ${JSON.stringify(reason)}`;
    const { c, states } = await opened({ topics: ["updates", "entity:7"] });
    c.subscribe("news");
    const got = [];
    c.onMessage((b) => got.push(b));
    const first = latest();
    first.serverSend('"before"');
    first.serverClose(code, reason);
    assert.deepEqual(states.at(-1), { state: "reconnecting", attempt: 1, delay: 375, code, reason }, what);
    mock.timers.tick(375);
    await flush();
    const next = latest();
    assert.notEqual(next, first, `${what}: a new socket`);
    assert.equal(next.url.searchParams.get("topic"), "updates,entity:7", what);
    next.serverOpen();
    assert.deepEqual(asked(next), ["updates", "entity:7", "news"], what);
    next.serverSend('"after"');
    assert.deepEqual(states.slice(-2).map((s) => s.state), ["open", "resync"], what);
    assert.deepEqual(got, ["before", "after"], what);
    c.close();
    assert.equal(running.size, 0, what);
  }
});

test("frames the client does not expect: text that is not JSON is delivered as text, binary frames are dropped (reported once), a large body arrives whole, and none stops the client", async () => {
  const errors = mock.method(console, "error", () => {});
  const { c, states } = await opened();
  const got = [];
  const keys = [];
  c.onMessage((b) => got.push(b));
  for (const k of ["", "plain text", "__proto__", "constructor"]) c.on(k, (b) => keys.push([k, b]));
  const ws = latest();
  const big = JSON.stringify({ type: "bulk", data: "é😀".repeat(200_000) }); // far past the 128 KB a gateway posts
  const frames = [
    "plain text",
    "{not json",
    "",
    "null",
    "[1,2]",
    '"__proto__"',
    '{"type":"constructor"}',
    '{"type":7}',
    '{"type":"pong"}', // a reply's shape, with no ping waiting: a message
    big,
  ];
  for (const f of frames) ws.serverSend(f);
  ws.onmessage?.({ data: new ArrayBuffer(8) });
  ws.onmessage?.({ data: { size: 8, type: "" } }); // a Blob
  assert.deepEqual(got, ["plain text", "{not json", "", null, [1, 2], "__proto__", { type: "constructor" }, { type: 7 }, { type: "pong" }, JSON.parse(big)]);
  assert.deepEqual(keys, [
    ["plain text", "plain text"],
    ["", ""],
    ["__proto__", "__proto__"],
    ["constructor", { type: "constructor" }],
  ]);
  assert.equal(errors.mock.callCount(), 1, "only the binary frames are reported, once");
  assert.match(String(errors.mock.calls[0].arguments[0].message), /binary frame/);
  assert.equal(c.state, "open");
  assert.deepEqual(states.map((s) => s.state), ["connecting", "open"]);
  errors.mock.restore();
  c.close();
});

test("a long-lived page: hundreds of reconnects and renewals of every kind leave one socket, the same few timers and listeners, and nothing held of the connections before", async () => {
  // A gateway that answers pings and subscribes while its link is alive.
  class Gateway extends FakeWebSocket {
    alive = true;
    send(data) {
      super.send(data);
      if (!this.alive) return;
      const f = JSON.parse(data);
      if (f.action === "ping") this.serverSend('{"type":"pong","time":"2026-11-30T12:00:00Z"}');
      else this.serverSend(JSON.stringify({ type: `${f.action}d`, topics: f.topics }));
    }
  }
  await withPage(async (page) => {
    const o = { WebSocket: Gateway, maxDurationMs: 60_000, heartbeatMs: 2000, openTimeoutMs: 1000, maxBackoffMs: 1000, maxAttempts: 3 };
    const { c, states } = await opened(o);
    const got = [];
    c.onMessage((b) => got.push(b));
    const reconnect = async () => {
      assert.equal(states.at(-1).state, "reconnecting");
      mock.timers.tick(states.at(-1).delay);
      await flush();
      latest().serverOpen();
    };
    const kinds = {
      "closed by the gateway": async (ws) => {
        ws.serverClose(1001, "Going away");
        await reconnect();
      },
      "a dead link, found by the heartbeat": async (ws) => {
        ws.alive = false;
        mock.timers.tick(o.heartbeatMs); // a ping
        mock.timers.tick(o.heartbeatMs); // no pong since: dead
        assert.equal(states.at(-1).reason, "no pong");
        await reconnect(); // the dead socket never reports its close
      },
      "a dead link, found when the page is shown again": async (ws) => {
        ws.alive = false;
        page.hide();
        page.show();
        mock.timers.tick(DEFAULTS.backoffMs); // the jittered wait, then the ping
        mock.timers.tick(o.openTimeoutMs); // no pong
        assert.equal(states.at(-1).reason, "no pong");
        await reconnect();
      },
      "a renewal": async (ws) => {
        for (let i = 0; i < 60 && FakeWebSocket.all.at(-1) === ws; i++) {
          mock.timers.tick(1000);
          await flush();
        }
        assert.notEqual(latest(), ws, "a renewal began");
        latest().serverOpen();
        mock.timers.tick(DEFAULTS.overlapMs);
        assert.equal(ws.closedWith?.reason, "renewed");
        ws.finishClose();
      },
      "handshakes that never open": async (ws) => {
        ws.serverClose(1006);
        for (let i = 0; i < 2; i++) {
          mock.timers.tick(states.at(-1).delay);
          await flush();
          latest().serverClose(1006);
        }
        await reconnect();
      },
      "into the back/forward cache and back": async (ws) => {
        page.pagehide(true);
        page.freeze();
        assert.equal(ws.closedWith?.reason, "page frozen");
        ws.finishClose();
        page.resume();
        page.pageshow(true);
        await reconnect();
      },
      "the connection's record gone (not registered)": async (ws) => {
        ws.alive = false;
        c.subscribe("gone");
        await flush();
        const errors = mock.method(console, "error", () => {});
        ws.serverSend('{"type":"error","error":"this connection is not registered; reconnect"}');
        errors.mock.restore();
        assert.equal(errors.mock.callCount(), 1, "reported");
        assert.equal(states.at(-1).reason, "not registered");
        await reconnect();
        c.unsubscribe("gone");
        await flush();
      },
      "the network gone and back": async (ws) => {
        page.onLine = false;
        ws.serverClose(1006);
        mock.timers.tick(60_000);
        await flush();
        page.online();
        mock.timers.tick(DEFAULTS.backoffMs);
        await flush();
        latest().serverOpen();
      },
    };
    const names = Object.keys(kinds);
    let sent = 0;
    for (let i = 0; i < 300; i++) {
      const kind = names[i % names.length];
      const what = `cycle ${i}, ${kind}`;
      const ws = latest();
      if (i % 2) c.subscribe(`t${i % 5}`);
      else c.unsubscribe(`t${(i + 2) % 5}`);
      await kinds[kind](ws);
      latest().serverSend(JSON.stringify({ type: "n", n: ++sent }));
      assert.equal(c.state, "open", what);
      assert.equal(got.length, sent, `${what}: every message delivered once`);
      const live = FakeWebSocket.all.filter((s) => s.readyState <= 1);
      assert.deepEqual(live, [latest()], `${what}: one socket open`);
      assert.ok(running.size <= 3, `${what}: ${running.size} timers (the heartbeat, the renewal and the backoff's)`);
      assert.deepEqual(page.listeners, { window: 3, document: 3 }, what);
      assert.equal(c._conn.ws, latest(), what);
      assert.equal(c._conn.pending.length, 0, `${what}: no action left waiting`);
      assert.ok(c._next === null && c._old === null && c._conn.peer === null && c._conn.seen === null, `${what}: nothing held of an earlier connection`);
      assert.equal(c._idTimers.size, 0, what);
      // A socket given up on as dead stays "closing" until the browser
      // gives up on it too: it must not reach the client then.
      for (const s of FakeWebSocket.all.slice(0, -1)) {
        assert.ok(s.readyState === 3 || (s.onmessage === null && s.onclose === null), `${what}: a socket left behind still reaches the client`);
      }
    }
    assert.ok(FakeWebSocket.all.length > 300);
    c.close();
    assert.equal(running.size, 0);
    assert.deepEqual(page.listeners, { window: 0, document: 0 });
    assert.deepEqual(FakeWebSocket.all.filter((s) => s.readyState <= 1), []);
  });
});

test("clients that opened together ping at their own times: each beat comes a random time from three quarters of heartbeatMs to heartbeatMs after the last, never later", async () => {
  // After a gateway restart every client reconnects within a second or
  // two. A heartbeat at a fixed interval from open would bring all their
  // pings back in one burst every heartbeatMs (each a route invocation,
  // under the account's request rate that the broker's posts share); a
  // random part of each beat spreads them further at every beat. Never
  // longer than heartbeatMs, which stays well under the idle timeout.
  const hb = DEFAULTS.heartbeatMs;
  const randoms = [0, 0.5, 0.999];
  const tabs = [];
  for (const r of randoms) {
    const { c } = await opened({ random: () => r });
    tabs.push({ c, ws: latest(), pings: [] });
  }
  // Answer every ping at once, and note when it came, to the second.
  for (let t = 1000; t <= 4 * hb; t += 1000) {
    mock.timers.tick(1000);
    for (const tab of tabs) {
      while (tab.ws.sent.length > tab.pings.length) {
        tab.pings.push(t);
        tab.ws.serverSend('{"type":"pong","time":"2026-11-30T12:00:00Z"}');
      }
    }
  }
  const beat = (r) => hb - Math.round((r * hb) / 4);
  tabs.forEach((tab, i) => {
    const gaps = tab.pings.map((t, j) => t - (j === 0 ? 0 : tab.pings[j - 1]));
    // This test's random is the same at every beat: so is each gap.
    assert.deepEqual(new Set(gaps.slice(1)).size, 1, `random ${randoms[i]}: ${gaps}`);
    assert.ok(Math.abs(gaps[0] - beat(randoms[i])) < 1000, `random ${randoms[i]}: the first ping after ${gaps[0]} ms; want ${beat(randoms[i])}`);
    assert.ok(gaps.every((g) => g <= hb && g > (3 * hb) / 4 - 1000), `random ${randoms[i]}: gaps ${gaps}`);
    assert.equal(tab.ws.closedWith, null, "every ping answered: the connection carries");
  });
  assert.equal(new Set(tabs.map((t) => t.pings[0])).size, 3, "the first pings of the three are apart");
  for (const t of tabs) t.c.close();
  assert.equal(running.size, 0);
});

test("a page that changes many topics one call at a time sends one subscribe and one unsubscribe, not a frame per call that the gateway's frame rate drops", async () => {
  // A list page that follows the entities it shows: switching to the next
  // page of the list unsubscribes forty topics and subscribes forty, one
  // call each. socks serve routes at most --max-frames-per-second frames a
  // second (50, as deep): a frame over it is dropped with an error frame
  // that names no topics, and a connection that keeps on is closed (1008).
  class RateLimited extends FakeWebSocket {
    followed = new Set();
    tokens = 50;
    send(data) {
      super.send(data);
      const f = JSON.parse(data);
      if (this.tokens < 1) {
        this.serverSend('{"type":"error","error":"too many frames: send at most 50 per second; this one was dropped, and a client that keeps on is disconnected (1008)"}');
        return;
      }
      this.tokens--;
      if (f.action === "subscribe") for (const t of f.topics) this.followed.add(t);
      if (f.action === "unsubscribe") for (const t of f.topics) this.followed.delete(t);
      if (f.action !== "ping") this.serverSend(JSON.stringify({ type: `${f.action}d`, topics: [...this.followed].sort() }));
    }
    serverOpen() {
      for (const t of (this.url.searchParams.get("topic") || ".").split(",")) this.followed.add(t);
      super.serverOpen();
    }
  }
  const errors = mock.method(console, "error", () => {});
  const first = Array.from({ length: 40 }, (_, i) => `entity:${i}`);
  const second = Array.from({ length: 40 }, (_, i) => `entity:${i + 40}`);
  const { c } = await opened({ WebSocket: RateLimited, topics: ["updates", ...first] });
  const ws = latest();
  for (const t of first) c.unsubscribe(t);
  for (const t of second) c.subscribe(t);
  await flush();
  assert.deepEqual(c.topics, ["updates", ...second]);
  assert.deepEqual([...ws.followed].sort(), ["updates", ...second].sort(), "the connection follows what the client says it follows");
  assert.equal(ws.sent.length, 2, "one unsubscribe and one subscribe");
  assert.equal(errors.mock.callCount(), 0, "no frame refused");
  // A topic followed and dropped again within one task costs no frame.
  c.subscribe("news");
  c.unsubscribe("news");
  await flush();
  assert.equal(ws.sent.length, 2);
  errors.mock.restore();
  c.close();
});

test("a refusal that reaches the connection a renewal replaced does not drop a topic the new connection asks for itself", async () => {
  // The old chatter ID may follow updates only; the renewal's fresh one
  // may follow news too. The old connection's answer comes late, after
  // the new one opened and asked for news, which the gateway takes.
  const errors = mock.method(console, "error", () => {});
  const { c } = await opened({ maxDurationMs: 20_000, random: () => 0, getChatterId: async () => "sc_renewed" });
  const old = latest();
  mock.timers.tick(14_999);
  c.subscribe("news");
  await flush();
  assert.deepEqual(old.sent, [{ action: "subscribe", topics: ["news"] }]);
  mock.timers.tick(1); // the renewal
  await flush();
  const next = latest();
  assert.notEqual(next, old);
  // news, not answered yet, is asked for once the new connection opens.
  assert.equal(next.url.searchParams.get("topic"), "updates");
  next.serverOpen();
  old.serverSend('{"type":"error","error":"this chatter ID may not follow news; it may follow only updates","topics":["updates"]}');
  assert.deepEqual(c.topics, ["updates", "news"], "news stays: the new connection asks for it");
  assert.equal(errors.mock.callCount(), 1, "the old connection's refusal is reported");
  await flush();
  assert.deepEqual(next.sent, [{ action: "subscribe", topics: ["news"] }], "once: nothing more to sync");
  next.serverSend('{"type":"subscribed","topics":["news","updates"]}');
  assert.deepEqual(c.topics, ["updates", "news"]);
  errors.mock.restore();
  c.close();
});

test("connect() refuses exactly the geeks the gateway refuses (web/testdata/names.json, pubsub.ValidateGeek's rules)", async () => {
  const { readFile } = await import("node:fs/promises");
  const rules = JSON.parse(await readFile(new URL("./testdata/names.json", import.meta.url), "utf8"));
  const refused = (geek) => {
    try {
      client({ geek }).c.close();
      return false;
    } catch (err) {
      assert.ok(err instanceof TypeError, String(err));
      return true;
    }
  };
  for (const { name, ok } of rules.names) {
    assert.equal(refused(name), !ok, `geek ${JSON.stringify(name)}: the gateway ${ok ? "takes" : "refuses"} it`);
  }
  // Between two letters: every code point the gateway refuses, those
  // either side of each range of them, and every 61st other one
  // (surrogates aside), refused by connect() exactly when the gateway
  // refuses it.
  const edges = new Set(rules.refused.flatMap(([lo, hi]) => [lo - 1, hi + 1]));
  let range = 0;
  const differ = [];
  for (let r = 0; r <= 0x10ffff; r++) {
    if (r >= 0xd800 && r <= 0xdfff) continue;
    while (range < rules.refused.length && rules.refused[range][1] < r) range++;
    const gateway = range < rules.refused.length && rules.refused[range][0] <= r;
    if (!gateway && !edges.has(r) && r % 61 !== 0) continue;
    if (refused("a" + String.fromCodePoint(r) + "b") !== gateway) differ.push(r.toString(16));
  }
  assert.deepEqual(differ, [], "code points connect() and the gateway disagree on (refused by the gateway: in rules.refused)");
});

// seeded is a random source in [0, 1) that replays the same run for a seed.
function seeded(seed) {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

test("any run of server frames, closes, clock ticks, topic calls, network and visibility changes keeps the client bounded, and close() leaves nothing; a client that has not failed recovers once the gateway is healthy", async () => {
  const errors = mock.method(console, "error", () => {});
  const frames = [
    '{"type":"pong"}',
    '{"type":"subscribed","topics":["a"]}',
    '{"type":"unsubscribed","topics":[]}',
    '{"type":"error","error":"this chatter ID may not follow b","topics":["a"]}',
    '{"type":"error","error":"too many frames: send at most 50 per second"}',
    '{"type":"error","error":"this connection is not registered; reconnect"}',
    '{"message":"Internal server error","connectionId":"c","requestId":"r"}',
    '{"message":"Forbidden","connectionId":"c","requestId":"r"}',
    '"plays-updated"',
    "not json",
  ];
  try {
    await withPage(async (page) => {
      for (let seed = 1; seed <= 200; seed++) {
        // Every failure names its seed, an assertion's or any other.
        try {
          const r = seeded(seed);
          const pick = (list) => list[Math.floor(r() * list.length)];
          FakeWebSocket.all = [];
          page.onLine = true;
          page.visibilityState = "visible";
          let issued = 0;
          const healthy = seed % 2 === 0; // the even seeds end with a gateway that opens every handshake
          const { c, states } = client({
            url: r() < 0.3 ? "ws://127.0.0.1:8765/" : "wss://gateway.test/prod",
            chatterId: undefined,
            protocol: pick(["query", "header"]),
            random: r,
            maxAttempts: healthy ? Infinity : 5,
            maxDurationMs: 60_000,
            heartbeatMs: 20_000,
            openTimeoutMs: 3_000,
            overlapMs: 1_000,
            maxBackoffMs: 8_000,
            getChatterId: async () => {
              // It fails, hangs, answers the last ID again past its
              // expiresAt, or a fresh one valid for up to 200 s of the
              // fake clock (Date is faked too): every path of _keepId.
              if (r() < 0.1) throw new Error("401 logged out");
              if (r() < 0.03) return new Promise(() => {});
              if (r() < 0.05 && issued > 0) return { chatterId: `sc_${issued}`, expiresAt: Date.now() - 1000 };
              issued++;
              return r() < 0.5 ? `sc_${issued}` : { chatterId: `sc_${issued}`, expiresAt: Date.now() + r() * 200_000 };
            },
          });
          if (!healthy) c.onState(() => r() < 0.01 && c.close());
          c.onMessage(() => {});
          await flush();
          for (let step = 0; step < 200 && !["failed", "closed"].includes(c.state); step++) {
            const live = FakeWebSocket.all.filter((w) => w.readyState < 3);
            const ws = live.length > 0 ? pick(live) : null;
            const x = r();
            if (x < 0.15) mock.timers.tick(Math.floor(r() * 10_000));
            else if (x < 0.3 && ws?.readyState === 0) ws.serverOpen();
            else if (x < 0.4 && ws) ws.serverClose(pick([1000, 1001, 1006, 1008, 1011]));
            else if (x < 0.45 && ws?.closedWith) ws.finishClose();
            else if (x < 0.6 && ws?.readyState === 1) ws.serverSend(pick(frames));
            else if (x < 0.68) c.subscribe(pick(["a", "b", "c", "d"]));
            else if (x < 0.74) c.unsubscribe(pick(["a", "b", "c", "d", "."]));
            else if (x < 0.8) page.onLine ? (page.onLine = false) : page.online();
            else if (x < 0.85) page.visibilityState === "visible" ? page.hide() : page.show();
            else if (x < 0.86 && !healthy) c.close();
            else if (x < 0.88) pick([() => page.pagehide(true), () => page.freeze(), () => page.pageshow(true), () => page.resume(), () => page.pagehide(false)])();
            await flush();
            const open = FakeWebSocket.all.filter((w) => w.readyState < 2);
            assert.ok(open.length <= 3, `seed ${seed}: ${open.length} sockets open (a connection, a renewal's and the one it replaced, at most)`);
            assert.ok(running.size <= 12, `seed ${seed}: ${running.size} timers`);
          }
          if (healthy) {
            // The gateway now opens every handshake, finishes every close and
            // answers every ping, and the network stays up.
            page.online();
            page.resume();
            const from = FakeWebSocket.all.length;
            for (let i = 0; i < 400; i++) {
              for (const ws of FakeWebSocket.all) {
                if (ws.readyState === 0 && !ws.closedWith) ws.serverOpen();
                if (ws.closedWith && ws.readyState !== 3) ws.finishClose();
                for (const f of ws.readyState === 1 ? ws.sent : []) {
                  if (f.action === "ping" && !f.answered) {
                    f.answered = true;
                    ws.serverSend('{"type":"pong"}');
                  }
                }
              }
              mock.timers.tick(500);
              await flush();
            }
            assert.equal(c.state, "open", `seed ${seed}: not back once the gateway was healthy (${states.map((s) => s.state).join(", ")})`);
            // The connection read from, opened by the healthy gateway (which
            // took every frame), follows what the client says it follows:
            // its connect URL's topics, then its subscribes and unsubscribes.
            const now = FakeWebSocket.all.slice(from).filter((w) => w.readyState === 1).at(-1);
            if (now) {
              let follows = (now.url.searchParams.get("topic") || ".").split(",");
              for (const f of now.sent) {
                if (f.action === "subscribe") follows = [...follows, ...f.topics.filter((t) => !follows.includes(t))];
                if (f.action === "unsubscribe") follows = follows.filter((t) => !f.topics.includes(t));
              }
              assert.deepEqual(follows.sort(), c.topics.sort(), `seed ${seed}: the connection follows other topics than the client says`);
            }
          }
          c.close();
          for (const ws of FakeWebSocket.all) if (ws.closedWith && ws.readyState !== 3) ws.finishClose();
          assert.equal(running.size, 0, `seed ${seed}: timers left after close()`);
          assert.ok(FakeWebSocket.all.every((w) => w.readyState >= 2), `seed ${seed}: a socket left open after close()`);
          // A client that failed may fail again (see "a client that failed
          // tries once more"); close() ends it, once and last.
          assert.equal(states.filter((s) => s.state === "closed").length, 1, `seed ${seed}: closed other than once`);
          assert.equal(states.at(-1).state, "closed", `seed ${seed}: went on after close()`);
          assert.equal(page.listeners.window + page.listeners.document, 0, `seed ${seed}: listeners left after close()`);
        } catch (err) {
          if (err instanceof Error && !err.message.startsWith(`seed ${seed}:`)) err.message = `seed ${seed}: ${err.message}`;
          throw err;
        }
      }
    });
  } finally {
    errors.mock.restore();
  }
});

test("subscribes and unsubscribes waiting for the gateway's answer are capped at 256 per connection: the page's later changes are held, said once, and sent once the gateway answers", async () => {
  // A gateway that pongs but never answers a subscribe or an unsubscribe
  // (a route that hangs, a hostile server), and a page that changes a
  // topic in a task of its own each time (a click, a timer): every task
  // sent a frame and kept it waiting for its answer, a list that grew
  // without end, each reply walking all of it.
  const errors = mock.method(console, "error", () => {});
  // What socks.js reported (node's own warnings go to console.error too).
  const said = () => errors.mock.calls.map((x) => String(x.arguments[0])).filter((m) => m.includes("socks:"));
  const { c, states } = await opened();
  const ws = latest();
  for (let i = 0; i < 1000; i++) {
    if (i % 2 === 0) c.subscribe("news");
    else c.unsubscribe("news");
    await flush();
  }
  c.subscribe("plays");
  await flush();
  const actions = () => ws.sent.filter((f) => f.action !== "ping");
  assert.equal(actions().length, 256, "at most 256 wait for an answer");
  assert.equal(said().length, 1, "said once");
  assert.match(said()[0], /256 subscribes and unsubscribes already wait for the gateway's answer/);
  assert.deepEqual(c.topics, ["updates", "plays"], "the page's calls are kept");
  // The heartbeat goes on: a ping is not held.
  mock.timers.tick(DEFAULTS.heartbeatMs);
  assert.deepEqual(ws.sent.at(-1), { action: "ping" });
  ws.serverSend('{"type":"pong","time":"2026-11-30T12:04:00.000Z"}');
  // One answer: what changed meanwhile goes in one frame.
  ws.serverSend('{"type":"subscribed","topics":["news","updates"]}');
  await flush();
  assert.deepEqual(actions().slice(256), [{ action: "subscribe", topics: ["plays"] }]);
  // The last unsubscribe of news was sent before the cap (1000 calls,
  // the 256th an unsubscribe): nothing more for news.
  assert.equal(said().length, 1);
  // Full again: not said again while the gateway has not answered half
  // of what waits (see the test of a gateway that answers slower).
  c.subscribe("jobs");
  await flush();
  assert.equal(actions().length, 257);
  assert.equal(said().length, 1);
  // A new connection asks for every topic the page follows, and starts
  // with nothing waiting.
  ws.serverClose(1001);
  mock.timers.tick(states.at(-1).delay);
  await flush();
  assert.equal(latest().url.searchParams.get("topic"), "updates");
  latest().serverOpen();
  c.subscribe("chat");
  await flush();
  assert.deepEqual(latest().sent, [
    { action: "subscribe", topics: ["plays", "jobs"] },
    { action: "subscribe", topics: ["chat"] },
  ]);
  errors.mock.restore();
  c.close();
});

test("a change held both ways at the cap goes as the gateway answers: the subscribe at the first answer, the unsubscribe at the next, each in one frame", async () => {
  const errors = mock.method(console, "error", () => {});
  const said = () => errors.mock.calls.map((x) => String(x.arguments[0])).filter((m) => m.includes("socks:"));
  const { c } = await opened();
  const ws = latest();
  for (let i = 0; i < 256; i++) {
    if (i % 2 === 0) c.subscribe("x");
    else c.unsubscribe("x");
    await flush();
  }
  const actions = () => ws.sent.filter((f) => f.action !== "ping");
  assert.equal(actions().length, 256);
  c.subscribe(["a", "b"]);
  c.unsubscribe("updates");
  await flush();
  c.subscribe("c");
  c.unsubscribe("a");
  await flush();
  assert.equal(actions().length, 256, "held");
  assert.equal(said().length, 1);
  // One answer makes room for one frame: the subscribe (it waited for room
  // for both, and so for a second answer that a gateway slow to answer
  // may be long in sending).
  ws.serverSend('{"type":"subscribed","topics":["updates","x"]}');
  await flush();
  assert.deepEqual(actions().slice(256), [{ action: "subscribe", topics: ["b", "c"] }]);
  ws.serverSend('{"type":"unsubscribed","topics":["updates"]}');
  await flush();
  assert.deepEqual(actions().slice(256), [
    { action: "subscribe", topics: ["b", "c"] },
    { action: "unsubscribe", topics: ["updates"] },
  ]);
  assert.deepEqual(c.topics, ["b", "c"]);
  assert.equal(said().length, 1, "said once");
  errors.mock.restore();
  c.close();
});

test("changes held at the cap are sent as where they ended: a topic subscribed, unsubscribed and subscribed again goes once; one unsubscribed and subscribed again, none", async () => {
  const errors = mock.method(console, "error", () => {});
  const { c } = await opened();
  const ws = latest();
  for (let i = 0; i < 256; i++) {
    if (i % 2 === 0) c.subscribe("x");
    else c.unsubscribe("x");
    await flush();
  }
  const actions = () => ws.sent.filter((f) => f.action !== "ping");
  for (const step of [() => c.subscribe("a"), () => c.unsubscribe("a"), () => c.subscribe("a"), () => c.unsubscribe("updates"), () => c.subscribe("updates")]) {
    step();
    await flush();
  }
  assert.equal(actions().length, 256, "held");
  ws.serverSend('{"type":"subscribed","topics":["updates","x"]}');
  await flush();
  ws.serverSend('{"type":"unsubscribed","topics":["x"]}');
  await flush();
  assert.deepEqual(actions().slice(256), [{ action: "subscribe", topics: ["a"] }]);
  assert.deepEqual(c.topics, ["a", "updates"]);
  errors.mock.restore();
  c.close();
});

test("a gateway that answers slower than the page changes topics is said to lag once, not at every answer; again once it caught up and fell behind anew", async () => {
  const errors = mock.method(console, "error", () => {});
  const said = () => errors.mock.calls.map((x) => String(x.arguments[0])).filter((m) => m.includes("socks:"));
  const { c } = await opened();
  const ws = latest();
  const toggle = async (i) => {
    if (i % 2 === 0) c.subscribe("x");
    else c.unsubscribe("x");
    await flush();
  };
  let i = 0;
  for (; i < 300; i++) await toggle(i);
  assert.equal(said().length, 1);
  // An answer, then a change, then another change: each answer lets one
  // frame go and the next change is held again.
  for (let n = 0; n < 20; n++) {
    ws.serverSend(`{"type":"${i % 2 === 0 ? "unsubscribed" : "subscribed"}","topics":["x"]}`);
    await flush();
    await toggle(i++);
    await toggle(i++);
  }
  assert.equal(ws.sent.filter((f) => f.action !== "ping").length, 256 + 20);
  assert.equal(said().length, 1, "said once while the gateway lags");
  // It catches up: every action answered.
  for (let n = 0; n < 256; n++) ws.serverSend('{"type":"subscribed","topics":["x"]}');
  for (let n = 0; n < 256; n++) ws.serverSend('{"type":"unsubscribed","topics":["x"]}');
  await flush();
  for (let n = 0; n < 300; n++) await toggle(i++);
  assert.equal(said().length, 2, "said again when it lags anew");
  errors.mock.restore();
  c.close();
});

test("a refused subscribe's topics are not asked for again one a frame past the cap: all are dropped, as on a connection that is closing", async () => {
  const errors = mock.method(console, "error", () => {});
  const said = () => errors.mock.calls.map((x) => String(x.arguments[0])).filter((m) => m.includes("socks:"));
  const { c, states } = await opened();
  const ws = latest();
  c.subscribe(["a", "b", "c"]);
  await flush();
  for (let i = 0; i < 255; i++) {
    if (i % 2 === 0) c.subscribe("x");
    else c.unsubscribe("x");
    await flush();
  }
  const actions = () => ws.sent.filter((f) => f.action !== "ping");
  assert.equal(actions().length, 256);
  assert.equal(said().length, 0);
  // The first is refused whole: a, b and c would each be asked for alone,
  // three frames where the answer made room for one. Held, they would be
  // named by the next connect, which the gateway refuses whole for b, if
  // this connection closed before it answered again.
  ws.serverSend('{"type":"error","error":"this chatter ID may not follow b; it may follow only updates, a, c, x","topics":["updates"]}');
  await flush();
  assert.equal(actions().length, 256, "none sent past the cap");
  assert.equal(said().length, 2);
  assert.match(said()[0], /256 subscribes and unsubscribes already wait/);
  assert.match(said()[1], /refused.*"a","b","c".*may not follow b/);
  assert.deepEqual(c.topics, ["updates", "x"]);
  ws.serverClose(1001, "Going away");
  mock.timers.tick(states.at(-1).delay);
  await flush();
  latest().serverOpen();
  assert.deepEqual(asked(latest()), ["updates", "x"]);
  errors.mock.restore();
  c.close();
});

test("a server whose answers come out of order, name topics never asked for, or come when nothing waits: each answers one action at most, the rest are messages, and the topics followed are the client's own", async () => {
  const errors = mock.method(console, "error", () => {});
  const said = () => errors.mock.calls.map((x) => String(x.arguments[0])).filter((m) => m.includes("socks:"));
  const { c, states } = await opened();
  const got = [];
  c.onMessage((b) => got.push(b));
  const ws = latest();
  c.subscribe("a");
  await flush();
  c.unsubscribe("updates");
  await flush();
  mock.timers.tick(DEFAULTS.heartbeatMs); // a ping waits too
  assert.deepEqual(ws.sent, [{ action: "subscribe", topics: ["a"] }, { action: "unsubscribe", topics: ["updates"] }, { action: "ping" }]);
  // API Gateway runs each frame in its own invocation: the answers may
  // come in any order. These name topics never asked for.
  ws.serverSend('{"type":"unsubscribed","topics":["evil"]}');
  ws.serverSend('{"type":"pong","time":"2026-11-30T12:04:00.000Z"}');
  ws.serverSend('{"type":"subscribed","topics":["a","evil","x,y"]}');
  assert.deepEqual(got, [], "the three answers");
  // Nothing waits now: more of the same, and a flood of them, are messages.
  for (let i = 0; i < 1000; i++) {
    ws.serverSend('{"type":"subscribed","topics":["evil"]}');
    ws.serverSend('{"type":"pong","time":"2026-11-30T12:04:00.000Z"}');
    ws.serverSend('{"type":"error","error":"you are refused","topics":[]}');
    ws.serverSend('{"type":"error","error":"too many frames: send at most 50 per second"}');
  }
  assert.equal(got.length, 4000);
  assert.deepEqual(said(), [], "nothing was refused");
  assert.deepEqual(c.topics, ["a"], "what the page asked for, not what the server named");
  ws.serverClose(1001, "Going away");
  mock.timers.tick(states.at(-1).delay);
  await flush();
  assert.equal(latest().url.searchParams.get("topic"), "a");
  errors.mock.restore();
  c.close();
});

test("a refusal naming a huge list of topics costs one pass over it, not one per topic of each subscribe waiting", async () => {
  // A real gateway's refusal names at most 50 topics; another server's
  // may name millions, which each subscribe waiting (up to 256, of up to
  // 50 topics each) was looked up in, from the start, one topic at a time.
  const errors = mock.method(console, "error", () => {});
  const { c } = await opened();
  const ws = latest();
  for (let i = 0; i < 100; i++) {
    c.subscribe(`t${i % 40}`);
    await flush();
    c.unsubscribe(`t${i % 40}`);
    await flush();
  }
  c.subscribe("news");
  await flush();
  const kept = Array.from({ length: 100_000 }, () => "x");
  kept.push(...Array.from({ length: 40 }, (_, i) => `t${i}`));
  const frame = JSON.stringify({ type: "error", error: "you may not follow news", topics: kept });
  // Count the elements the client looks through in arrays this long.
  const includes = Array.prototype.includes;
  let scanned = 0;
  Array.prototype.includes = function (...args) {
    if (this.length > 100_000) scanned += this.length;
    return includes.apply(this, args);
  };
  try {
    ws.serverSend(frame);
  } finally {
    Array.prototype.includes = includes;
  }
  assert.ok(scanned <= kept.length, `${scanned} elements looked through, ${Math.round(scanned / kept.length)} times the list`);
  assert.deepEqual(c.topics, ["updates"], "news refused, the answer to the last subscribe");
  errors.mock.restore();
  c.close();
});

test("a refusal of the later subscribe, run first, names neither topic: the subscribed that follows answers its own subscribe, and the next connect does not ask for the refused topic (the gateway would refuse it whole)", async () => {
  // API Gateway runs each frame in its own invocation: secret's subscribe
  // may run before news's. Its refusal then names only the topics followed
  // before either, outside which both asked, and was taken for news's; the
  // subscribed naming news was taken for secret's, and every later connect
  // named secret, which the gateway refuses whole (ending in failed).
  const errors = mock.method(console, "error", () => {});
  const said = () => errors.mock.calls.map((x) => String(x.arguments[0])).filter((m) => m.includes("socks:"));
  const { c, states } = await opened();
  const ws = latest();
  c.subscribe("news");
  await flush();
  c.subscribe("secret");
  await flush();
  assert.deepEqual(ws.sent, [{ action: "subscribe", topics: ["news"] }, { action: "subscribe", topics: ["secret"] }]);
  ws.serverSend('{"type":"error","error":"this chatter ID may not follow secret; it may follow only news, updates","topics":["updates"]}');
  ws.serverSend('{"type":"subscribed","topics":["news","updates"]}');
  assert.ok(!c.topics.includes("secret"), `topics ${JSON.stringify(c.topics)} still name secret, which the gateway refused`);
  assert.match(said()[0], /may not follow secret/);
  ws.serverClose(1001, "Going away");
  mock.timers.tick(states.at(-1).delay);
  await flush();
  assert.ok(!latest().url.searchParams.get("topic").split(",").includes("secret"), `the next connect asks for ${latest().url.searchParams.get("topic")}`);
  errors.mock.restore();
  c.close();
});

test("subscribed replies out of order answer their own subscribes: the first names y but not x, and both are followed", async () => {
  const errors = mock.method(console, "error", () => {});
  const { c, states } = await opened();
  const ws = latest();
  c.subscribe("x");
  await flush();
  c.subscribe("y");
  await flush();
  ws.serverSend('{"type":"subscribed","topics":["updates","y"]}');
  ws.serverSend('{"type":"subscribed","topics":["updates","x","y"]}');
  assert.deepEqual(c.topics, ["updates", "x", "y"]);
  assert.equal(errors.mock.callCount(), 0);
  // A reply that names no topic says nothing of them (another server's):
  // the page's own list holds.
  c.subscribe("z");
  await flush();
  ws.serverSend('{"type":"subscribed","topics":[]}');
  assert.deepEqual(c.topics, ["updates", "x", "y", "z"]);
  ws.serverClose(1001, "Going away");
  mock.timers.tick(states.at(-1).delay);
  await flush();
  assert.equal(latest().url.searchParams.get("topic"), "updates,x,y,z");
  errors.mock.restore();
  c.close();
});

test("an unsubscribe the gateway refuses (this connection is not registered) is reported, and its topics are not asked for by the next connection, as socks listen does", async () => {
  // The page asked not to follow jobs: nothing makes a later connect ask
  // for it again, as for an unsubscribe whose route failed.
  const errors = mock.method(console, "error", () => {});
  const said = () => errors.mock.calls.map((x) => String(x.arguments[0])).filter((m) => m.includes("socks:"));
  const { c, states } = await opened({ topics: ["updates", "jobs"] });
  const got = [];
  c.onMessage((b) => got.push(b));
  const ws = latest();
  c.unsubscribe("jobs");
  await flush();
  assert.deepEqual(ws.sent, [{ action: "unsubscribe", topics: ["jobs"] }]);
  ws.serverSend('{"type":"error","error":"this connection is not registered; reconnect"}');
  assert.deepEqual(got, [], "the refusal answers the unsubscribe");
  assert.match(said()[0], /refused.*unsubscribe.*not registered/);
  assert.deepEqual(c.topics, ["updates"]);
  ws.serverClose(1001, "Going away");
  mock.timers.tick(states.at(-1).delay);
  await flush();
  assert.equal(latest().url.searchParams.get("topic"), "updates");
  errors.mock.restore();
  c.close();
});

test("an expiresAt in seconds since the epoch (below 1e11, as a JWT's exp) is taken as seconds and said once: the ID is used again, not asked for at every reconnect as if long expired", async () => {
  // In ms, 1e11 is March 1973; in seconds it is the year 5138: no expiry a
  // gateway gives is on the wrong side of it either way.
  let now = Date.parse("2026-11-30T12:00:00Z");
  const clock = mock.method(Date, "now", () => now);
  const errors = mock.method(console, "error", () => {});
  const said = () => errors.mock.calls.map((x) => String(x.arguments[0])).filter((m) => m.includes("socks:"));
  const issued = [];
  const getChatterId = async () => {
    issued.push(`sc_id${issued.length + 1}`);
    return { chatterId: issued.at(-1), expiresAt: Math.floor(now / 1000) + 15 * 60 };
  };
  try {
    const { c, states } = client({ chatterId: undefined, getChatterId });
    await flush();
    latest().serverOpen();
    for (let i = 0; i < 3; i++) {
      latest().serverClose(1001, "going away");
      mock.timers.tick(states.at(-1).delay);
      await flush();
      latest().serverOpen();
    }
    assert.deepEqual(issued, ["sc_id1"], "valid for 15 minutes: used again");
    assert.equal(latest().url.searchParams.get("id"), "sc_id1");
    assert.equal(said().length, 1, "said once");
    assert.match(said()[0], /expiresAt.*seconds/);
    // Near its expiry, in seconds, a fresh one.
    now += 14 * 60 * 1000 + 30 * 1000;
    latest().serverClose(1001, "going away");
    mock.timers.tick(states.at(-1).delay);
    await flush();
    assert.deepEqual(issued, ["sc_id1", "sc_id2"]);
    assert.equal(said().length, 1, "not said again");
    c.close();
  } finally {
    clock.mock.restore();
    errors.mock.restore();
  }
});

test("the gateway's \"this connection is not registered; reconnect\" (its record gone: pruned, expired) reconnects once, after the usual backoff, and the new connection follows every topic", async () => {
  const errors = mock.method(console, "error", () => {});
  const said = () => errors.mock.calls.map((x) => String(x.arguments[0])).filter((m) => m.includes("socks:"));
  const { c, states } = await opened({ topics: ["updates", "jobs"] });
  const got = [];
  c.onMessage((b) => got.push(b));
  const ws = latest();
  c.subscribe("news");
  c.unsubscribe("jobs");
  await flush();
  assert.deepEqual(ws.sent, [
    { action: "subscribe", topics: ["news"] },
    { action: "unsubscribe", topics: ["jobs"] },
  ]);
  const gone = '{"type":"error","error":"this connection is not registered; reconnect"}';
  ws.serverSend(gone);
  ws.serverSend(gone); // the unsubscribe's answer: no second reconnect
  assert.deepEqual(got, [], "the answers are not messages");
  assert.deepEqual(ws.closedWith, { code: 1000, reason: "not registered" });
  assert.equal(FakeWebSocket.all.length, 1, "the reconnect waits for its backoff");
  assert.deepEqual(states.slice(2).map((s) => s.state), ["reconnecting"]);
  assert.deepEqual(states.at(-1), { state: "reconnecting", attempt: 1, delay: 375, code: 1000, reason: "not registered" });
  assert.match(said()[0], /not registered/);
  mock.timers.tick(375);
  await flush();
  assert.equal(FakeWebSocket.all.length, 2, "one fresh connection");
  const next = latest();
  next.serverOpen();
  await flush();
  assert.deepEqual(asked(next), ["updates", "news"]);
  assert.deepEqual(c.topics, ["updates", "news"]);
  assert.deepEqual(states.slice(-2).map((s) => s.state), ["open", "resync"]);
  // The socket given up closes late: nothing more comes of it.
  ws.serverClose(1000);
  assert.equal(FakeWebSocket.all.length, 2);
  assert.equal(c.state, "open");
  errors.mock.restore();
  c.close();
});

test("a long reconnect wait is cut short when the network comes back or the page is shown again: one dial after a wait within the first backoff step, the attempt counted as usual", async () => {
  // A gateway down for a while has the client waiting up to maxBackoffMs
  // (30 s) between attempts; the laptop that slept, the network that came
  // back, the tab shown again would otherwise wait out what is left of it.
  const win = new EventTarget();
  const doc = new EventTarget();
  doc.visibilityState = "visible";
  const saved = { add: globalThis.addEventListener, remove: globalThis.removeEventListener, document: globalThis.document };
  globalThis.addEventListener = win.addEventListener.bind(win);
  globalThis.removeEventListener = win.removeEventListener.bind(win);
  globalThis.document = doc;
  try {
    const { c, states } = await opened({ maxAttempts: 20 });
    latest().serverClose(1006);
    // A wait within the first step (375 ms) is left as it is.
    assert.deepEqual(states.at(-1), { state: "reconnecting", attempt: 1, delay: 375, code: 1006, reason: "" });
    const told = states.length;
    win.dispatchEvent(new Event("online"));
    assert.equal(states.length, told, "nothing to cut");
    mock.timers.tick(374);
    await flush();
    assert.equal(FakeWebSocket.all.length, 1);
    mock.timers.tick(1);
    await flush();
    // The gateway is down: handshakes fail until the wait is at its longest.
    while (states.at(-1).delay < 22500) {
      latest().serverClose(1006);
      mock.timers.tick(states.at(-1).delay);
      await flush();
    }
    const dialled = FakeWebSocket.all.length;
    const { attempt } = states.at(-1);
    // random 0.5: a wait of half the first step.
    for (const [target, event, visible] of [
      [win, "online"],
      [doc, "visibilitychange", "visible"],
    ]) {
      latest().serverClose(1006);
      assert.equal(states.at(-1).delay, 22500);
      mock.timers.tick(10_000);
      if (visible) {
        doc.visibilityState = "hidden";
        doc.dispatchEvent(new Event("visibilitychange"));
        assert.equal(states.at(-1).delay, 22500, "hidden: nothing cut");
        doc.visibilityState = visible;
      }
      target.dispatchEvent(new Event(event));
      target.dispatchEvent(new Event(event));
      assert.deepEqual(states.at(-1), { state: "reconnecting", attempt: states.at(-2).attempt, delay: 250, code: 1006, reason: "" }, event);
      assert.equal(states.at(-2).delay, 22500, `${event}: cut once, however many events`);
      mock.timers.tick(249);
      await flush();
      assert.equal(FakeWebSocket.all.length, dialled + (visible ? 1 : 0), event);
      mock.timers.tick(1);
      await flush();
      assert.equal(FakeWebSocket.all.length, dialled + (visible ? 2 : 1), `${event}: one dial`);
    }
    assert.equal(states.at(-1).attempt, attempt + 2, "each cut attempt counted as usual");
    mock.timers.tick(60_000);
    await flush();
    assert.equal(FakeWebSocket.all.length, dialled + 2, "no dial left behind");
    latest().serverOpen();
    assert.deepEqual(states.slice(-2).map((s) => s.state), ["open", "resync"]);
    c.close();
    assert.equal(running.size, 0);
  } finally {
    globalThis.addEventListener = saved.add;
    globalThis.removeEventListener = saved.remove;
    globalThis.document = saved.document;
    if (!saved.add) delete globalThis.addEventListener;
    if (!saved.remove) delete globalThis.removeEventListener;
    if (!saved.document) delete globalThis.document;
  }
});

test("a topic subscribed while disconnected that the gateway refuses is refused alone once the next connection opens, reported and dropped: the client does not end in failed, and keeps the others", async () => {
  // A connect URL naming a topic the chatter ID may not follow is refused
  // whole (403), which a browser sees only as a handshake that never
  // opened: every attempt would be refused, ending in "failed".
  const errors = mock.method(console, "error", () => {});
  const said = () => errors.mock.calls.map((x) => String(x.arguments[0])).filter((m) => m.includes("socks:"));
  const { c, states } = await opened({ topics: ["updates", "entity:1"] });
  const got = [];
  c.onMessage((b) => got.push(b));
  latest().serverClose(1001, "going away");
  c.subscribe(["news", "entity:2"]); // the chatter ID may follow updates and entity:*
  // The gateway, as routes' $connect: a URL naming news is refused.
  const gateway = async () => {
    for (let i = 0; i < 20 && c.state === "reconnecting"; i++) {
      mock.timers.tick(states.at(-1).delay);
      await flush();
      const ws = latest();
      if ((ws.url.searchParams.get("topic") ?? ".").split(",").includes("news")) ws.serverClose(1006);
      else ws.serverOpen();
    }
  };
  await gateway();
  assert.equal(c.state, "open");
  const ws = latest();
  assert.equal(ws.url.searchParams.get("topic"), "updates,entity:1", "the topics the gateway took before");
  assert.deepEqual(ws.sent, [{ action: "subscribe", topics: ["news", "entity:2"] }], "the new ones, once open");
  const refusal = '{"type":"error","error":"this chatter ID may not follow news; it may follow only updates, entity:*","topics":["entity:1","updates"]}';
  ws.serverSend(refusal);
  assert.deepEqual(ws.sent.slice(1), [
    { action: "subscribe", topics: ["news"] },
    { action: "subscribe", topics: ["entity:2"] },
  ]);
  ws.serverSend(refusal);
  ws.serverSend('{"type":"subscribed","topics":["entity:1","entity:2","updates"]}');
  assert.deepEqual(got, []);
  assert.deepEqual(c.topics, ["updates", "entity:1", "entity:2"]);
  assert.equal(said().length, 1);
  assert.match(said()[0], /may not follow news/);
  // The next connection asks for what the gateway took.
  ws.serverClose(1001, "going away");
  await gateway();
  assert.equal(c.state, "open");
  assert.equal(latest().url.searchParams.get("topic"), "updates,entity:1,entity:2");
  assert.deepEqual(latest().sent, []);
  errors.mock.restore();
  c.close();
});

test("a page put in the back/forward cache (pagehide persisted) or frozen (freeze) closes its connection cleanly and leaves nothing running; shown again (pageshow persisted, resume) it reconnects once, then resync", async () => {
  // An open WebSocket keeps a page out of Chrome's back/forward cache, and
  // a frozen page reads nothing from one.
  await withPage(async (page) => {
    const { c, states } = await opened();
    for (const [leave, back] of [
      [() => (page.pagehide(true), page.freeze()), () => (page.resume(), page.pageshow(true))],
      [() => page.freeze(), () => page.resume()],
      [() => page.pagehide(true), () => page.pageshow(true)],
    ]) {
      const ws = latest();
      const n = FakeWebSocket.all.length;
      const attempt = states.filter((s) => s.state === "reconnecting").length === 0 ? 1 : states.at(-3).attempt + 1;
      leave();
      assert.deepEqual(ws.closedWith, { code: 1000, reason: "page frozen" });
      assert.equal(running.size, 0, "nothing runs while frozen");
      assert.deepEqual(states.at(-1), { state: "reconnecting", attempt, code: 1000, reason: "page frozen" });
      ws.finishClose(); // the browser's onclose, later: nothing comes of it
      mock.timers.tick(10 * 60 * 1000);
      await flush();
      assert.equal(FakeWebSocket.all.length, n, "no dial while frozen");
      back();
      // random 0.5: half the first backoff step.
      assert.deepEqual(states.at(-1), { state: "reconnecting", attempt, delay: 250, code: 1000, reason: "page frozen" });
      mock.timers.tick(250);
      await flush();
      assert.equal(FakeWebSocket.all.length, n + 1, "one new connection");
      latest().serverOpen();
      assert.deepEqual(states.slice(-2).map((s) => s.state), ["open", "resync"]);
      assert.equal(latest().url.searchParams.get("topic"), "updates");
    }
    // An unload (not persisted) and a first load are left to the browser.
    const n = FakeWebSocket.all.length;
    page.pagehide(false);
    page.pageshow(false);
    assert.equal(latest().closedWith, null);
    assert.equal(FakeWebSocket.all.length, n);
    c.close();
    assert.equal(running.size, 0);
    assert.deepEqual(page.listeners, { window: 0, document: 0 });
  });
});

test("a client that failed, frozen while it waits to try once more and shown again, says reconnecting with the delay and its code and reason undefined: no close began that try (socks.d.ts: code?: number | undefined)", async () => {
  await withPage(async (page) => {
    const { c, states } = client({ maxAttempts: 1 });
    await flush();
    latest().serverClose(1006);
    assert.equal(c.state, "failed");
    page.online(); // tries once more, after a wait of its own
    assert.deepEqual(states.at(-1), { state: "reconnecting", attempt: 1, delay: 250 });
    page.pagehide(true); // it said "reconnecting" already: nothing more
    assert.equal(states.at(-1).state, "reconnecting");
    assert.equal(states.filter((s) => s.state === "reconnecting").length, 1);
    page.pageshow(true);
    // The try's info again, with the new delay: the fields of a close (none) given as undefined.
    const thawed = states.at(-1);
    assert.deepEqual(thawed, { state: "reconnecting", attempt: 1, delay: 250, code: undefined, reason: undefined });
    assert.ok("code" in thawed && "reason" in thawed);
    mock.timers.tick(250);
    await flush();
    latest().serverOpen();
    assert.deepEqual(states.slice(-2).map((s) => s.state), ["open", "resync"]);
    c.close();
  });
});

test("a page frozen while getChatterId is asked and shown again makes one connection: the answer that comes after the thaw does not dial a second one", async () => {
  await withPage(async (page) => {
    const answers = [];
    const getChatterId = () => new Promise((resolve) => answers.push(resolve));
    const { c, states } = client({ chatterId: undefined, getChatterId });
    await flush();
    assert.equal(answers.length, 1);
    page.freeze();
    page.resume();
    mock.timers.tick(250);
    await flush();
    assert.equal(answers.length, 2, "asked again after the thaw");
    answers[0]("sc_before");
    await flush();
    answers[1]("sc_after");
    await flush();
    assert.equal(FakeWebSocket.all.length, 1, "one connection");
    assert.equal(latest().url.searchParams.get("id"), "sc_after");
    latest().serverOpen();
    assert.deepEqual(states.map((s) => s.state), ["connecting", "reconnecting", "reconnecting", "open", "resync"]);
    c.close();
    assert.equal(running.size, 0);
  });
});

test("a server's error text is reported cut to 200 characters and an ellipsis, a short one whole", async () => {
  // The gateway's text went into reportError at full length: an error
  // frame of megabytes into the console and every error tracker.
  const errors = mock.method(console, "error", () => {});
  try {
    const { c } = await opened();
    const ws = latest();
    // 151 + 2 × 100 UTF-16 units: the 200th is the first half of the 25th emoji.
    const long = "é".repeat(151) + "😀".repeat(100);
    c.subscribe("news");
    await flush();
    ws.serverSend(JSON.stringify({ type: "error", error: long, topics: ["updates"] }));
    c.subscribe("plays");
    await flush();
    ws.serverSend(JSON.stringify({ message: "m".repeat(5000), connectionId: "a", requestId: "r".repeat(5000) }));
    c.subscribe("jobs");
    await flush();
    ws.serverSend('{"type":"error","error":"this chatter ID may not follow jobs","topics":["updates"]}');
    assert.equal(errors.mock.callCount(), 3);
    const said = errors.mock.calls.map((call) => String(call.arguments[0].message));
    // Cut at 200 units, before a pair the cut would halve.
    assert.ok(said[0].endsWith(": " + "é".repeat(151) + "😀".repeat(24) + "…"), said[0]);
    assert.ok(!said[0].includes("\uFFFD") && !/[\uD800-\uDBFF]…/.test(said[0]), "no half of a pair");
    assert.ok(said[1].includes("m".repeat(200) + "… (requestId " + "r".repeat(200) + "…)"), said[1].slice(0, 300));
    assert.ok(!said[1].includes("m".repeat(201)) && !said[1].includes("r".repeat(201)), "cut at 200");
    assert.match(said[2], /: this chatter ID may not follow jobs$/, "a short text is whole");
    c.close();
  } finally {
    errors.mock.restore();
  }
});

test("a binary frame is reported once per connection, not delivered, and does not close it", async () => {
  // socks sends text frames only: a binary one was dropped without a word.
  const errors = mock.method(console, "error", () => {});
  try {
    const { c, states } = await opened();
    const got = [];
    c.onMessage((b) => got.push(b));
    let ws = latest();
    ws.onmessage({ data: new ArrayBuffer(4) });
    ws.onmessage({ data: new ArrayBuffer(8) });
    assert.equal(errors.mock.callCount(), 1, "said once for the connection");
    assert.match(String(errors.mock.calls[0].arguments[0].message), /binary frame/);
    assert.equal(ws.closedWith, null, "the connection stays open");
    ws.serverSend('"still here"');
    assert.deepEqual(got, ["still here"]);
    // The next connection says it again, once.
    ws.serverClose(1006);
    mock.timers.tick(states.at(-1).delay);
    await flush();
    ws = latest();
    ws.serverOpen();
    ws.onmessage({ data: new ArrayBuffer(4) });
    ws.onmessage({ data: new ArrayBuffer(4) });
    assert.equal(errors.mock.callCount(), 2, "once more, for the new connection");
    assert.deepEqual(got, ["still here"]);
    c.close();
  } finally {
    errors.mock.restore();
  }
});
