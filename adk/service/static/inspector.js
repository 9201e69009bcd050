// adk inspector: the runs of an adk service, live. Plain JavaScript, no build step, no CDN.
// It only speaks the service's HTTP API, with the API key kept in sessionStorage (never in a URL).
"use strict";
(() => {
  const KEY = "adk-inspector-key";
  const STOPPED = ["completed", "failed", "cancelled", "interrupted", "paused"];
  const STATUSES = ["queued", "running", "paused", "interrupted", "completed", "failed", "cancelled"];
  const main = document.getElementById("main");
  let current = null; // aborts the shown page's requests when another page is opened

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "class") node.className = value;
      else if (value === true) node.setAttribute(name, "");
      else if (value !== false && value != null) node.setAttribute(name, value);
    }
    for (const child of children.flat()) if (child != null) node.append(child);
    return node;
  }
  const json = (value) => JSON.stringify(value, null, 2);
  const enc = encodeURIComponent;
  const badge = (status) => el("span", { class: "status " + status }, status);
  const when = (stamp) => new Date(stamp * 1000).toLocaleString();
  const money = (cost) => (cost == null ? "—" : "$" + cost.toFixed(cost < 0.01 ? 6 : 4));
  const ms = (seconds) => (seconds == null ? "—" : (seconds * 1000).toFixed(1) + " ms");

  class NeedKey extends Error {}

  function headers(extra) {
    const all = Object.assign({}, extra);
    const key = sessionStorage.getItem(KEY);
    if (key) all.Authorization = "Bearer " + key;
    return all;
  }

  async function request(path, options) {
    const opts = options || {};
    const init = { method: opts.method || "GET", headers: headers(opts.headers), signal: opts.signal };
    if (opts.body !== undefined) {
      init.method = opts.method || "POST";
      init.body = JSON.stringify(opts.body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      askKey();
      throw new NeedKey("an API key is needed");
    }
    return response;
  }

  async function api(path, options) {
    const response = await request(path, options);
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const error = body && body.error;
      throw new Error(error ? error.type + ": " + error.message : "HTTP " + response.status);
    }
    return body;
  }

  function askKey() {
    const form = document.getElementById("key-form");
    const note = document.getElementById("key-note");
    if (sessionStorage.getItem(KEY)) note.textContent = "The service refused that API key. Enter another.";
    else if (form.hidden) note.textContent = "This service needs an API key.";
    sessionStorage.removeItem(KEY);
    form.hidden = false;
    main.replaceChildren();
    document.getElementById("key-input").focus();
  }

  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("key-input");
    sessionStorage.setItem(KEY, input.value.trim());
    input.value = "";
    document.getElementById("key-form").hidden = true;
    route();
  });
  document.getElementById("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    route();
  });

  function failed(error) {
    if (error instanceof NeedKey || (error && error.name === "AbortError")) return;
    main.append(el("p", { class: "error", id: "page-error" }, String(error.message || error)));
  }

  function route() {
    if (current) current.abort();
    current = new AbortController();
    document.getElementById("forget").hidden = !sessionStorage.getItem(KEY);
    const match = location.hash.match(/^#\/runs\/(.+)$/);
    const page = match ? runPage(decodeURIComponent(match[1]), current.signal) : listPage(current.signal);
    page.catch(failed);
  }
  window.addEventListener("hashchange", route);

  // -- the list of runs --------------------------------------------------------------------------

  async function listPage(signal) {
    const filter = el("select", { id: "status-filter" }, el("option", { value: "" }, "any status"),
      STATUSES.map((s) => el("option", { value: s }, s)));
    const rows = el("tbody");
    const more = el("button", { id: "more", type: "button", hidden: true }, "More");
    const head = ["run", "agent", "status", "calls", "tokens", "cost", "updated"];
    main.replaceChildren(el("h1", {}, "Runs"), el("div", { class: "bar" }, filter, newRunForm(signal)),
      el("table", { id: "runs" }, el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { class: i > 2 && i < 6 ? "num" : "" }, h)))), rows),
      el("p", {}, more));
    let cursor = null;
    let pages = 0;
    async function load(fresh) {
      const query = new URLSearchParams({ limit: "25" });
      if (filter.value) query.set("status", filter.value);
      if (cursor && !fresh) query.set("cursor", cursor);
      const page = await api("inspector/api/runs?" + query, { signal });
      if (fresh) rows.replaceChildren(...page.runs.map(runRow));
      else rows.append(...page.runs.map(runRow));
      if (!rows.children.length) rows.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "no runs")));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      pages = fresh ? 1 : pages + 1;
      const active = page.runs.some((run) => run.status === "queued" || run.status === "running");
      if (fresh && active) { // runs move on: look again while only the first page is shown
        setTimeout(() => { if (!signal.aborted && pages === 1) load(true).catch(failed); }, 1500);
      }
    }
    filter.addEventListener("change", () => load(true).catch(failed));
    more.addEventListener("click", () => load(false).catch(failed));
    await load(true);
  }

  function runRow(run) {
    const s = run.serving;
    return el("tr", { "data-run": run.id },
      el("td", {}, el("a", { href: "#/runs/" + enc(run.id) }, run.id)), el("td", {}, run.agent),
      el("td", {}, badge(run.status)), el("td", { class: "num" }, s.calls || "—"),
      el("td", { class: "num" }, s.calls ? s.prompt_tokens + s.completion_tokens : "—"),
      el("td", { class: "num" }, money(s.cost)), el("td", {}, when(run.updated)));
  }

  function newRunForm(signal) {
    const agent = el("select", { id: "new-agent" });
    const input = el("input", { id: "new-input", type: "text", placeholder: "message", required: true });
    const form = el("form", { id: "new-run", class: "bar" }, "New run:", agent, input,
      el("button", { type: "submit" }, "Start"));
    api("inspector/api/agents", { signal }).then((found) => {
      agent.append(...found.agents.map((name) => el("option", { value: name }, name)));
    }).catch(failed);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      api("runs", { body: { agent: agent.value, input: input.value } })
        .then((run) => { location.hash = "#/runs/" + enc(run.id); }).catch(failed);
    });
    return form;
  }

  // -- one run -----------------------------------------------------------------------------------

  async function runPage(id, signal) {
    const view = await api("runs/" + enc(id), { signal });
    const run = {
      id, signal, seq: 0, nodes: new Map(), calls: new Map(), asked: new Set(), tokens: 0, models: 0,
      status: el("span", { id: "run-status" }), approvals: el("div", { id: "approvals" }),
      tree: el("div", { id: "tree", class: "panel" }), metrics: el("div", { id: "metrics" }),
      totals: el("p", { id: "totals", class: "totals" }),
    };
    main.replaceChildren(el("p", {}, el("a", { href: "#/" }, "← runs")), el("h1", {}, id),
      el("div", { class: "bar" }, run.status, el("span", {}, "agent ", el("b", {}, view.agent)),
        el("span", { class: "muted" }, "created " + when(view.created))),
      run.approvals, el("h2", {}, "Events"), run.tree, el("h2", {}, "Model calls"), run.metrics, run.totals);
    setStatus(run, view.status);
    await follow(run);
  }

  function setStatus(run, status) {
    run.status.replaceChildren(badge(status));
    run.status.dataset.status = status;
  }

  async function follow(run) {
    for (;;) {
      await stream(run);
      const view = await api("runs/" + enc(run.id), { signal: run.signal });
      setStatus(run, view.status);
      await showCalls(run);
      if (!STOPPED.includes(view.status)) { // the stream broke off: go on where it stopped
        await new Promise((resolve) => setTimeout(resolve, 300));
        continue;
      }
      if (view.status !== "interrupted") return;
      const answers = await askAnswers(run, view.interrupts);
      await api("runs/" + enc(run.id) + "/answers", { body: { answers }, signal: run.signal });
      run.approvals.replaceChildren();
    }
  }

  async function stream(run) {
    const path = "runs/" + enc(run.id) + "/events?after=" + run.seq;
    const response = await request(path, { headers: { Accept: "text/event-stream" }, signal: run.signal });
    if (!response.ok) throw new Error("the event stream failed: HTTP " + response.status);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const message = {};
        for (const line of buffer.slice(0, cut).split("\n")) {
          const at = line.indexOf(": ");
          if (at > 0) message[line.slice(0, at)] = line.slice(at + 2);
        }
        buffer = buffer.slice(cut + 2);
        if (message.data === undefined) continue; // a keep-alive
        run.seq = Number(message.id);
        if (message.event === "status") onStatus(run, JSON.parse(message.data));
        else onEvent(run, JSON.parse(message.data));
      }
    }
  }

  function onStatus(run, data) {
    setStatus(run, data.status);
    run.tree.append(el("div", { class: "entry log" }, "status: " + data.status +
      (data.segment > 1 ? " (segment " + data.segment + ")" : "")));
  }

  function node(run, path) {
    const key = path.join("/");
    let found = run.nodes.get(key);
    if (!found) {
      const parent = path.length > 1 ? node(run, path.slice(0, -1)) : run.tree;
      found = el("details", { class: "agent", open: true, "data-path": key },
        el("summary", {}, path[path.length - 1] || "run"));
      parent.append(found);
      run.nodes.set(key, found);
    }
    return found;
  }

  function onEvent(run, event) {
    const box = node(run, event.run_path && event.run_path.length ? event.run_path : [event.agent_name]);
    const output = event.output || {};
    const message = output.message;
    if (message && output.partial) {
      let live = box.querySelector(":scope > .text.live");
      if (!live) box.append(live = el("div", { class: "entry text live" }));
      live.append(message.content || "");
    } else if (message) {
      const live = box.querySelector(":scope > .text.live");
      if (live) live.remove();
      showMessage(run, box, message);
    } else if (output.value !== undefined && output.value !== null) {
      box.append(el("div", { class: "entry" }, el("b", {}, "output "), el("pre", {}, json(output.value))));
    }
    const action = event.action || {};
    if (action.interrupted) {
      for (const pending of action.interrupted.interrupts) {
        if (run.asked.has(pending.id)) continue;
        run.asked.add(pending.id);
        const info = pending.info || {};
        const what = info.type === "approval" ? "waiting for approval of " + info.tool : "waiting for an answer";
        box.append(el("div", { class: "entry log" }, what));
      }
    }
    if (action.transfer_to_agent) box.append(el("div", { class: "entry log" }, "→ transfer to " + action.transfer_to_agent.dest));
    if (event.error) box.append(el("div", { class: "entry error" }, event.error.type + ": " + event.error.message));
  }

  function showMessage(run, box, message) {
    if (message.usage) {
      run.models += 1;
      run.tokens += (message.usage.prompt_tokens || 0) + (message.usage.completion_tokens || 0);
    }
    if (message.role === "tool") {
      const call = run.calls.get(message.tool_call_id);
      const result = el("pre", { class: "result" }, message.content || "");
      if (call) call.append(result);
      else box.append(el("div", { class: "entry tool" }, el("span", { class: "name" }, message.name), result));
      return;
    }
    if (message.content) {
      const who = message.role === "assistant" ? null : el("b", {}, message.role + ": ");
      box.append(el("div", { class: "entry text" }, who, message.content));
    }
    for (const call of message.tool_calls || []) {
      let args = call.arguments;
      try { args = json(JSON.parse(call.arguments)); } catch (error) { /* shown as sent */ }
      const shown = el("div", { class: "entry tool", "data-call": call.id },
        el("span", { class: "name" }, "⚙ " + call.name), el("pre", { class: "arguments" }, args));
      run.calls.set(call.id, shown);
      box.append(shown);
    }
    run.totals.textContent = run.models + " model messages, " + run.tokens + " tokens";
  }

  // -- approvals and other interrupts ------------------------------------------------------------

  function askAnswers(run, interrupts) {
    return new Promise((resolve) => {
      const answers = {};
      const decide = (id, answer, card) => {
        answers[id] = answer;
        card.classList.add("decided");
        card.querySelectorAll("button").forEach((b) => { b.disabled = true; });
        if (Object.keys(answers).length === interrupts.length) resolve(answers);
      };
      run.approvals.replaceChildren(...interrupts.map((pending) => interruptCard(pending, decide)));
    });
  }

  function interruptCard(pending, decide) {
    const info = pending.info || {};
    const approval = info.type === "approval";
    const text = el("textarea", { class: "answer" }, approval ? json(info.arguments || {}) : "");
    const reason = el("input", { type: "text", class: "reason", placeholder: "why (sent to the model)" });
    const error = el("span", { class: "error" });
    const card = el("div", { class: "approval", "data-interrupt": pending.id });
    const parsed = () => {
      try { return JSON.parse(text.value); } catch (e) { error.textContent = "not JSON: " + e.message; return undefined; }
    };
    const button = (label, cls, act) => el("button", { type: "button", class: cls, onclick: act }, label);
    if (approval) {
      card.append(el("b", {}, "Approval needed: " + info.tool), el("div", { class: "muted" }, "arguments (edit to change them)"),
        text, el("div", { class: "actions" },
          button("Approve", "primary approve", () => {
            const edited = parsed();
            if (edited === undefined) return;
            const same = json(edited) === json(info.arguments || {});
            decide(pending.id, same ? { decision: "approve" } : { decision: "edit", arguments: edited }, card);
          }),
          reason, button("Reject", "danger reject", () => decide(pending.id, { decision: "reject", message: reason.value }, card)),
          error));
    } else {
      card.append(el("b", {}, "Input needed"), el("pre", {}, json(info)), el("div", { class: "muted" }, "answer (JSON)"),
        text, el("div", { class: "actions" }, button("Answer", "primary answer", () => {
          const value = parsed();
          if (value !== undefined) decide(pending.id, value, card);
        }), error));
    }
    return card;
  }

  // -- serving metrics ---------------------------------------------------------------------------

  async function showCalls(run) {
    const found = await api("inspector/api/runs/" + enc(run.id) + "/calls", { signal: run.signal });
    if (!found.calls.length) {
      run.metrics.replaceChildren(el("p", { class: "muted" }, "No serving metrics for this run (a model object " +
        "called directly, or the run executed in another process)."));
      return;
    }
    const head = ["agent", "backend", "replica", "queue wait", "TTFT", "latency", "prompt", "cached", "output", "cost"];
    const rows = found.calls.map((c) => el("tr", {}, el("td", {}, c.agent), el("td", {}, c.backend),
      el("td", {}, c.replica), el("td", { class: "num" }, ms(c.queue_wait)), el("td", { class: "num" }, ms(c.ttft)),
      el("td", { class: "num" }, ms(c.latency)), el("td", { class: "num" }, c.prompt_tokens),
      el("td", { class: "num" }, c.cached_tokens), el("td", { class: "num" }, c.completion_tokens),
      el("td", { class: "num" }, money(c.cost))));
    run.metrics.replaceChildren(el("table", { id: "calls" },
      el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { class: i > 2 ? "num" : "" }, h)))),
      el("tbody", {}, rows)));
    const s = found.summary;
    run.totals.textContent = s.calls + " model calls, " + (s.prompt_tokens + s.completion_tokens) + " tokens (" +
      s.cached_tokens + " cached), cost " + money(s.cost);
  }

  route();
})();
