// The console's only script: live parts refreshed on server-sent events, confirmed actions, attempt logs.
// Packaged with the project; it loads nothing from elsewhere.
"use strict";

(function () {
  const ACTION_HEADER = "X-Datapipeline-Console";
  const LOG_SOURCES = { pod: "from the pod", pipelineLogUri: "from pipelineLogUri", TaskAttempt: "from its poller" };
  let refreshTimer = null;

  // ------------------------------------------------------------------ live updates
  function refreshLive() {
    const live = document.getElementById("live");
    if (!live) return;
    const url = new URL(window.location.href);
    url.searchParams.set("fragment", "live");
    fetch(url, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then((response) => {
        if (response.status === 404) flash(false, "this no longer exists: it was deleted");
        return response.ok ? response.text() : null;
      })
      .then((html) => {
        if (html === null) return;
        live.innerHTML = html;
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      })
      .catch(() => {});
  }

  function refreshSoon() {
    // Several changes in a burst (a run's status is patched a few times a second) make one fetch.
    if (refreshTimer !== null) return;
    refreshTimer = window.setTimeout(() => {
      refreshTimer = null;
      refreshLive();
    }, 250);
  }

  function listen() {
    const source = document.body.dataset.events;
    if (!source || !window.EventSource) return;
    const dot = document.getElementById("live-dot");
    const events = new EventSource(source);
    let opened = false;
    events.addEventListener("change", refreshSoon);
    events.addEventListener("open", () => {
      if (dot) dot.classList.add("on");
      if (opened) refreshSoon(); // reconnected: changes may have been missed meanwhile
      opened = true;
    });
    events.addEventListener("error", () => {
      if (dot) dot.classList.remove("on");
    });
  }

  // ------------------------------------------------------------------ actions
  function flash(ok, text) {
    const box = document.getElementById("flash");
    box.hidden = false;
    box.className = ok ? "flash ok" : "flash error";
    box.textContent = text;
  }

  // An action that needs values (run now: time and parameters; backfill: the range) asks for them in the
  // confirmation; data-fields lists them as [{key, label, value}].
  function askFields(button) {
    const box = document.getElementById("confirm-fields");
    box.replaceChildren();
    for (const field of JSON.parse(button.dataset.fields || "[]")) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      label.textContent = field.label;
      input.name = field.key;
      input.value = field.value;
      input.dataset.initial = field.value;
      label.append(input);
      box.append(label);
    }
  }

  function askedFields() {
    // Only what the user set: an untouched parameter keeps the Pipeline's default, as the CLI does.
    const fields = {};
    for (const input of document.querySelectorAll("#confirm-fields input")) {
      if (input.value !== input.dataset.initial) fields[input.name] = input.value;
    }
    return fields;
  }

  function confirmThen(button) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = button.dataset.confirm;
    document.getElementById("confirm-cli").textContent = button.dataset.cli;
    askFields(button);
    dialog.returnValue = "";
    dialog.onclose = () => {
      if (dialog.returnValue === "ok") act(button, askedFields());
    };
    dialog.showModal();
  }

  function act(button, fields) {
    const body = { action: button.dataset.action, namespace: button.dataset.namespace, fields: fields };
    for (const key of ["run", "pipeline", "activity"]) {
      if (button.dataset[key]) body[key] = button.dataset[key];
    }
    fetch("/api/actions", {
      method: "POST",
      headers: { "Content-Type": "application/json", [ACTION_HEADER]: "1" },
      body: JSON.stringify(body),
    })
      .then((response) =>
        response.json().then((data) => {
          if (response.ok) flash(true, data.message);
          else flash(false, data.error);
        }),
      )
      .catch((error) => flash(false, `the console did not answer: ${error}`));
  }

  // ------------------------------------------------------------------ logs
  function showLog(button) {
    const params = new URLSearchParams({
      namespace: button.dataset.namespace,
      run: button.dataset.run,
      activity: button.dataset.activity,
      attempt: button.dataset.attempt,
    });
    const panel = document.getElementById("log-panel");
    const title = document.getElementById("log-title");
    const text = document.getElementById("log");
    panel.hidden = false;
    title.textContent = `${button.dataset.activity} attempt ${button.dataset.attempt}: loading…`;
    text.textContent = "";
    fetch(`/api/log?${params}`, { cache: "no-store" })
      .then((response) =>
        response.json().then((data) => {
          if (!response.ok) {
            title.textContent = `${button.dataset.activity} attempt ${button.dataset.attempt}`;
            text.textContent = `${response.status}: ${data.error}`;
            text.className = "error";
            return;
          }
          const log = data[0];
          const from = LOG_SOURCES[log.source] || "";
          title.textContent = `${log.activity} attempt ${log.attempt} (${log.job}) ${from}`;
          text.className = "";
          text.textContent = log.text;
        }),
      )
      .catch((error) => {
        text.textContent = `the console did not answer: ${error}`;
      });
  }

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const action = target && target.closest("button[data-action]");
    if (action) {
      event.preventDefault();
      confirmThen(action);
      return;
    }
    const log = target && target.closest("button[data-log]");
    if (log) {
      event.preventDefault();
      showLog(log);
    }
  });

  listen();
})();
