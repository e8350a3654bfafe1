// The dashboard: a table of tasks kept current by the event stream, with run, terminate,
// disable/enable, an inline condition editor, and each task's history and run output.
"use strict";

const state = { tasks: new Map(), selected: null, csrf: sessionStorage.getItem("csrf"), events: null, output: null };
const $ = (id) => document.getElementById(id);

function when(value) {
  return value ? new Date(value).toLocaleString() : "—";
}

function showBanner(message) {
  const banner = $("banner");
  banner.textContent = message;
  banner.hidden = !message;
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.method && options.method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  let response;
  try {
    response = await fetch(path, {
      ...options,
      headers,
      credentials: "same-origin",
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch (error) {
    showBanner("Cannot reach the service. Is it running?");
    throw error;
  }
  if (response.status === 401) {
    showSignIn();
    throw new Error("sign-in needed");
  }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(describe(body) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function describe(body) {
  if (!body || body.detail === undefined) return "";
  if (typeof body.detail === "string") return body.detail;
  return body.detail.map((item) => item.msg).join("; ");
}

// -- signing in -----------------------------------------------------------------------

function showSignIn() {
  $("sign-in").hidden = false;
  $("main").hidden = true;
  $("sign-out").hidden = true;
  $("token").focus();
}

async function signIn(event) {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    const body = await api("/auth/session", { method: "POST", body: { token: $("token").value } });
    state.csrf = body.csrf_token;
    sessionStorage.setItem("csrf", state.csrf);
    $("token").value = "";
    $("sign-in").hidden = true;
    $("sign-out").hidden = false;
    await start();
  } catch (error) {
    $("sign-in-error").textContent = error.message === "sign-in needed" ? "That token is not valid." : error.message;
  }
}

async function signOut() {
  await api("/auth/session", { method: "DELETE" }).catch(() => null);
  state.csrf = null;
  sessionStorage.removeItem("csrf");
  if (state.events) state.events.close();
  showSignIn();
}

// -- the task table -------------------------------------------------------------------

function statusOf(task) {
  if (task.is_running) return ["run", "running"];
  if (task.disabled) return ["disabled", "disabled"];
  return [task.status || "never", task.status || "never run"];
}

function renderRow(task) {
  let row = document.querySelector(`tr[data-task="${CSS.escape(task.name)}"]`);
  if (!row) {
    row = $("task-row").content.firstElementChild.cloneNode(true);
    row.dataset.task = task.name;
    const id = `cond-${task.name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    row.querySelector(".condition label").htmlFor = id;
    row.querySelector(".condition-input").id = id;
    row.querySelector(".condition label").textContent = `Start condition of ${task.name}`;
    row.querySelector(".name").addEventListener("click", () => select(task.name));
    row.querySelector(".condition").addEventListener("submit", (event) => saveCondition(event, task.name));
    row.querySelectorAll(".actions button").forEach((button) =>
      button.addEventListener("click", () => act(task.name, button.dataset.action)));
    insertSorted(row, task.name);
  }
  const [kind, label] = statusOf(task);
  row.querySelector(".name").textContent = task.name;
  row.querySelector(".name").setAttribute("aria-label", `Show the history of ${task.name}`);
  const status = row.querySelector(".status");
  status.className = `status ${kind}`;
  status.textContent = label;
  const input = row.querySelector(".condition-input");
  if (document.activeElement !== input && input.getAttribute("aria-invalid") !== "true") input.value = task.start_cond;
  row.querySelector(".last-run").textContent = when(task.last_run);
  row.querySelector(".next-run").textContent = when(task.next_run);
  row.querySelector('[data-action="run"]').setAttribute("aria-label", `Run ${task.name} now`);
  const terminate = row.querySelector('[data-action="terminate"]');
  terminate.disabled = !task.is_running;
  terminate.setAttribute("aria-label", `Terminate ${task.name}`);
  const toggle = row.querySelector('[data-action="toggle"]');
  toggle.textContent = task.disabled ? "Enable" : "Disable";
  toggle.setAttribute("aria-label", `${task.disabled ? "Enable" : "Disable"} ${task.name}`);
  row.classList.toggle("selected", state.selected === task.name);
}

function insertSorted(row, name) {
  const rows = $("task-rows");
  const after = [...rows.children].find((other) => other.dataset.task > name);
  rows.insertBefore(row, after || null);
}

async function loadTasks() {
  const body = await api("/tasks");
  state.tasks = new Map(body.data.map((task) => [task.name, task]));
  for (const row of [...$("task-rows").children]) {
    if (!state.tasks.has(row.dataset.task)) row.remove();
  }
  body.data.forEach(renderRow);
  $("tasks-empty").hidden = body.count > 0;
  $("tasks").hidden = body.count === 0;
}

async function refreshTask(name) {
  try {
    const task = await api(`/tasks/${encodeURIComponent(name)}`);
    state.tasks.set(name, task);
    renderRow(task);
  } catch (error) {
    if (error.status === 404) {
      state.tasks.delete(name);
      document.querySelector(`tr[data-task="${CSS.escape(name)}"]`)?.remove();
    }
  }
}

async function act(name, action) {
  const task = state.tasks.get(name);
  const path = action === "toggle" ? (task.disabled ? "enable" : "disable") : action;
  try {
    await api(`/tasks/${encodeURIComponent(name)}/${path}`, { method: "POST" });
    showBanner("");
    await refreshTask(name);
  } catch (error) {
    showBanner(`${name}: ${error.message}`);
  }
}

async function saveCondition(event, name) {
  event.preventDefault();
  const form = event.currentTarget;
  const input = form.querySelector(".condition-input");
  const message = form.querySelector(".condition-error");
  try {
    await api(`/tasks/${encodeURIComponent(name)}`, { method: "PATCH", body: { start_cond: input.value } });
    input.removeAttribute("aria-invalid");
    message.textContent = "";
    input.blur();
    await refreshTask(name);
  } catch (error) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", message.id || (message.id = `${input.id}-error`));
    message.textContent = error.message;
  }
}

// -- history and output -------------------------------------------------------------

async function select(name) {
  state.selected = name;
  document.querySelectorAll("#task-rows tr").forEach((row) => row.classList.toggle("selected", row.dataset.task === name));
  $("detail").hidden = false;
  $("detail-title").textContent = `History of ${name}`;
  $("output").hidden = true;
  await loadRecords();
}

async function loadRecords() {
  const name = state.selected;
  if (!name) return;
  const body = await api(`/tasks/${encodeURIComponent(name)}/logs?limit=50`);
  const list = $("records");
  list.replaceChildren();
  $("detail-empty").hidden = body.data.length > 0;
  const shown = new Set();
  for (const record of body.data) {
    const item = document.createElement("li");
    const time = document.createElement("span");
    time.className = "when";
    time.textContent = when(record.created);
    const status = document.createElement("span");
    status.className = `status ${record.action}`;
    status.textContent = record.action;
    item.append(time, status, " ");
    if (record.runtime != null) item.append(`${record.runtime.toFixed(3)} s `);
    if (record.run_id && !shown.has(record.run_id)) {
      shown.add(record.run_id);  // one link per run, on its newest record
      const show = document.createElement("button");
      show.type = "button";
      show.className = "link";
      show.textContent = "output";
      show.setAttribute("aria-label", `Show the output of run ${record.run_id}`);
      show.addEventListener("click", () => showOutput(name, record.run_id));
      item.append(show);
    }
    if (record.exc_text) {
      const trace = document.createElement("pre");
      trace.className = "traceback";
      trace.textContent = record.exc_text;
      item.append(trace);
    }
    list.append(item);
  }
}

function showOutput(name, runId) {
  if (state.output) state.output.close();
  const lines = $("output-lines");
  lines.textContent = "";
  $("output").hidden = false;
  $("output-title").textContent = `Output of run ${runId}`;
  $("output-state").textContent = "Following…";
  const source = new EventSource(`/tasks/${encodeURIComponent(name)}/runs/${encodeURIComponent(runId)}/output?follow=true`);
  state.output = source;
  source.addEventListener("line", (event) => {
    const line = JSON.parse(event.data);
    lines.textContent += `${line.stream === "stdout" ? "" : `[${line.stream}] `}${line.text}\n`;
  });
  source.addEventListener("end", () => {
    $("output-state").textContent = lines.textContent ? "The run has ended." : "The run has ended; it wrote nothing.";
    source.close();
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) $("output-state").textContent = "Not found.";
  };
}

// -- live updates ---------------------------------------------------------------------

const DEFINITION_CHANGES = ["create", "edit", "delete", "disable", "enable", "restore", "reset", "import"];

function listen() {
  if (state.events) state.events.close();
  const source = new EventSource("/events");
  state.events = source;
  const pending = new Set();
  let timer = null;
  const touched = (event) => {
    const data = JSON.parse(event.data);
    if (event.type === "create" || event.type === "delete") {
      loadTasks().catch(() => null);
    } else if (data.task_name) {
      pending.add(data.task_name);
      // Events come in bursts (a run's start and end): one refresh per task per burst.
      timer = timer || setTimeout(() => {
        const names = [...pending];
        pending.clear();
        timer = null;
        names.forEach(refreshTask);
        if (names.includes(state.selected)) loadRecords().catch(() => null);
      }, 100);
    }
  };
  ["run", "success", "fail", "terminate", "inaction", "crash", ...DEFINITION_CHANGES].forEach((kind) =>
    source.addEventListener(kind, touched));
  source.addEventListener("overflow", () => { source.close(); setTimeout(listen, 1000); loadTasks(); });
  source.onopen = () => {
    $("live").textContent = "Live";
    $("live").classList.remove("down");
    showBanner("");
  };
  source.onerror = () => {
    $("live").textContent = "Reconnecting…";
    $("live").classList.add("down");
  };
}

async function loadSession() {
  const session = await api("/session");
  $("session").textContent = `${session.state} · ${session.task_count} tasks · ${session.running_count} running`;
}

async function start() {
  let who;
  try {
    who = await api("/auth/session");
  } catch {
    return; // the sign-in form is shown
  }
  $("sign-out").hidden = who.name === "open";
  $("main").hidden = false;
  await Promise.all([loadTasks(), loadSession()]);
  listen();
  setInterval(() => loadSession().catch(() => null), 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  start().catch((error) => showBanner(`The dashboard could not load: ${error.message}`));
});
