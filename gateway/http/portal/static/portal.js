// The portal's settings screens: a small script over the admin API (/api/v1) with the session cookie.
// No framework, no build step, no third-party code. Every value from the API reaches the page through
// textContent or an attribute, never through innerHTML, so data cannot become markup.
"use strict";

(function () {
  const API = "/api/v1";
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  const toast = document.getElementById("toast");
  let session = null; // {operator, tenant_id, idps, public_url}
  const tenantNames = {};

  // -- DOM -------------------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "checked" || k === "value" || k === "disabled" || k === "selected") el[k] = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  let uid = 0;
  const nextId = (p) => `${p}-${++uid}`;

  function field(labelText, input, hint) {
    input.id = input.id || nextId("f");
    const kids = [h("label", { for: input.id }, labelText), input];
    if (hint) {
      const hid = nextId("hint");
      input.setAttribute("aria-describedby", hid);
      kids.push(h("p", { class: "hint", id: hid }, hint));
    }
    return h("div", { class: "field" }, kids);
  }

  function checkbox(labelText, checked, hint) {
    const input = h("input", { type: "checkbox", checked: !!checked, id: nextId("cb") });
    const kids = [h("div", { class: "check" }, input, h("label", { for: input.id }, labelText))];
    if (hint) {
      const hid = nextId("hint");
      input.setAttribute("aria-describedby", hid);
      kids.push(h("p", { class: "hint", id: hid }, hint));
    }
    return { input, el: h("div", { class: "field" }, kids) };
  }

  function fmtTime(iso) {
    if (!iso) return "never";
    return iso.replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function say(text) {
    toast.textContent = "";
    toast.textContent = text;
    toast.classList.add("show");
    clearTimeout(say.timer);
    say.timer = setTimeout(() => toast.classList.remove("show"), 4000);
  }

  function notice(kind, text) {
    return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  }

  // A status area that keeps its place on the page: messages replace each other.
  function statusArea() {
    const el = h("div", { class: "status-area", "aria-live": "polite" });
    return {
      el,
      show(kind, text) { el.replaceChildren(notice(kind, text)); },
      clear() { el.replaceChildren(); },
    };
  }

  async function copyText(text, input) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        say("Copied to the clipboard.");
        return;
      }
    } catch (e) { /* fall back to selecting the text */ }
    if (input) {
      input.focus();
      input.select();
      const ok = document.execCommand && document.execCommand("copy");
      say(ok ? "Copied to the clipboard." : "Selected: press Ctrl+C (or ⌘C) to copy.");
    } else {
      say("Copy is not available in this browser: select the text and copy it.");
    }
  }

  // A read-only value with a Copy button; the button's name says what it copies.
  // A textarea, not an input, so a long URL wraps and stays readable in full instead of being cut off.
  const sizesItself = window.CSS && CSS.supports && CSS.supports("field-sizing", "content");
  function copyField(labelText, value, copyName) {
    const input = h("textarea", { readonly: true, class: "mono value", spellcheck: "false", rows: sizesItself ? "1" : String(Math.max(1, Math.ceil(value.length / 44))) });
    input.value = value;
    const button = h("button", { type: "button", class: "secondary", "aria-label": copyName || `Copy ${labelText}`,
      onclick: () => copyText(input.value, input) }, "Copy");
    input.id = nextId("copy");
    return h("div", { class: "field" }, h("label", { for: input.id }, labelText),
      h("div", { class: "copy-row" }, input, button));
  }

  // Tables keep their semantics (explicit roles) and, on a narrow screen, become one card per row:
  // each cell carries its column's name (data-label) for the style sheet to show beside the value.
  function labelRows(table) {
    const heads = [...table.tHead.rows[0].cells].map((th) => th.textContent.trim());
    table.setAttribute("role", "table");
    for (const sec of [table.tHead, ...table.tBodies]) sec.setAttribute("role", "rowgroup");
    for (const th of table.tHead.rows[0].cells) th.setAttribute("role", "columnheader");
    table.tHead.rows[0].setAttribute("role", "row");
    for (const body of table.tBodies) {
      for (const tr of body.rows) {
        tr.setAttribute("role", "row");
        [...tr.cells].forEach((td, i) => {
          td.setAttribute("role", "cell");
          if (td.colSpan === 1 && heads[i]) td.setAttribute("data-label", heads[i]);
        });
      }
    }
    return table;
  }
  function tableWrap(table) {
    table.classList.add("responsive");
    return h("div", { class: "table-wrap" }, labelRows(table));
  }

  // -- API -------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, detail) { super(detail); this.status = status; this.code = code; }
  }

  async function api(method, path, body) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path.startsWith("/") && !path.startsWith(API) && !path.startsWith("/portal") ? API + path : path, opts);
    } catch (e) {
      throw new ApiError(0, "network", "The gateway could not be reached. Check your connection and try again.");
    }
    if (resp.status === 204) return null;
    let data = null;
    const text = await resp.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!resp.ok) {
      if (resp.status === 401) {
        sessionEnded();
      }
      const detail = data && typeof data.detail === "string" ? data.detail : `The gateway answered ${resp.status}.`;
      throw new ApiError(resp.status, data && data.error, detail);
    }
    return data;
  }

  function sessionEnded() {
    main.replaceChildren(
      h("h1", {}, "Your session has ended"),
      notice("error", "You were signed out, or the session timed out. Sign in again, or ask your gateway operator for a new portal link."),
      h("p", {}, h("a", { href: "/portal/login" }, "Go to sign in")),
    );
    throw new ApiError(401, "unauthorized", "session ended");
  }

  // Run an action; show its failure in `status` (or as the page) in words, never as raw JSON.
  async function attempt(status, fn, prefix) {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return undefined;
      const text = e instanceof ApiError ? e.message : "Something went wrong in the page. Reload it and try again.";
      if (status) status.show("error", (prefix ? prefix + ": " : "") + text);
      else showError(text);
      return undefined;
    }
  }

  function showError(text, title) {
    main.replaceChildren(h("h1", {}, title || "Something went wrong"), notice("error", text),
      h("p", {}, h("a", { href: "#/" }, "Back to the start")));
  }

  // -- layout ----------------------------------------------------------------------------------
  function crumbs(...parts) {
    const ol = h("ol", {}, parts.map((p, i) => h("li", i === parts.length - 1 ? { "aria-current": "page" } : {}, p)));
    return h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, ol);
  }

  function renderNav(route) {
    const items = [];
    if (session.operator) items.push(["#/tenants", "Tenants", route.page === "tenants"]);
    const t = session.operator ? route.tenant : session.tenant_id;
    if (t) {
      const base = `#/tenants/${encodeURIComponent(t)}`;
      items.push(null);
      items.push(["", "Account", false, true]);
      items.push([`${base}/api-keys`, "API Keys", route.page === "api-keys"]);
      items.push([`${base}/identity/scim`, "Identity", route.page === "identity"]);
      items.push([`${base}/users`, "Users", route.page === "users"]);
    }
    const ul = h("ul", {});
    for (const it of items) {
      if (!it) continue;
      const [href, text, current, heading] = it;
      if (heading) { ul.append(h("li", { class: "nav-heading" }, text)); continue; }
      ul.append(h("li", {}, h("a", { href, "aria-current": current ? "page" : null }, text)));
    }
    nav.replaceChildren(ul);
  }

  function parseRoute() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
    if (parts[0] === "tenants" && parts[1]) {
      return { page: parts[2] || "api-keys", tenant: parts[1], tab: parts[3] || "scim" };
    }
    if (parts[0] === "tenants" && session.operator) return { page: "tenants" };
    if (session.tenant_id) return { page: "api-keys", tenant: session.tenant_id, redirect: true };
    return { page: "tenants" };
  }

  async function route() {
    const r = parseRoute();
    if (r.redirect) {
      location.replace(`#/tenants/${encodeURIComponent(r.tenant)}/api-keys`);
      return;
    }
    if (r.tenant && !tenantNames[r.tenant]) {
      let t;
      try {
        t = await api("GET", `/tenants/${encodeURIComponent(r.tenant)}`);
      } catch (e) {
        renderNav({ page: null, tenant: null });
        if (e.status === 404) {
          const what = e.message.charAt(0).toUpperCase() + e.message.slice(1);
          showError(`${what}. It does not exist, or it is not yours to open: a portal link opens the settings of one tenant only.`, "Tenant not found");
        } else if (e.status !== 401) {
          showError(e.message);
        }
        return;
      }
      tenantNames[t.id] = t.name;
    }
    renderNav(r);
    who.textContent = session.operator
      ? (r.tenant ? `Operator · ${tenantNames[r.tenant]}` : "Operator")
      : tenantNames[session.tenant_id] || "";
    main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    const pages = { tenants: tenantsPage, "api-keys": keysPage, identity: identityPage, users: usersPage };
    const page = pages[r.page];
    if (!page) { showError("There is no such page. Use the menu to find the setting you are looking for."); return; }
    await page(r);
    const h1 = main.querySelector("h1");
    if (h1) document.title = `${h1.textContent} · SCIM gateway`;
  }

  // -- Tenants (operators) ------------------------------------------------------------------------
  async function tenantsPage(r, message) {
    const status = statusArea();
    if (message) status.show("ok", message);
    const data = await attempt(null, () => api("GET", "/tenants"));
    if (!data) return;
    const createBox = h("div", {});
    const linkBox = h("div", { class: "link-box" });
    const rows = data.tenants.map((t) => {
      tenantNames[t.id] = t.name;
      return h("tr", {},
        h("td", {}, h("a", { href: `#/tenants/${encodeURIComponent(t.id)}/api-keys` }, t.name)),
        h("td", { class: "mono" }, t.id),
        h("td", {}, t.idp),
        h("td", {}, t.scim_enabled ? "On" : "Off"),
        h("td", { class: "actions" },
          h("a", { class: "button secondary", href: `#/tenants/${encodeURIComponent(t.id)}/api-keys`, "aria-label": `Open ${t.name}` }, "Open"),
          h("button", { type: "button", class: "secondary", "aria-label": `Make portal link for ${t.name}`,
            onclick: () => showLinkForm(t) }, "Make portal link")));
    });

    function showLinkForm(t) {
      const minutes = h("input", { type: "number", min: "1", max: "60", value: "5", inputmode: "numeric" });
      const out = h("div", {});
      const form = h("form", { class: "panel", "aria-label": `Portal link for ${t.name}`, onsubmit: async (ev) => {
        ev.preventDefault();
        const n = Number(minutes.value);
        const link = await attempt(status, () => api("POST", `/tenants/${encodeURIComponent(t.id)}/portal-links`, { minutes: n }), "Could not make the link");
        if (!link) return;
        status.clear();
        out.replaceChildren(copyField("Portal link", link.url, "Copy portal link"),
          h("p", { class: "hint" }, `Single use; expires ${fmtTime(link.expires_at)}. Whoever opens it can change ${t.name}'s SCIM settings: send it only to their IT admin.`));
        out.querySelector("textarea").focus();
      } },
        h("h2", {}, `Portal link for ${t.name}`),
        field("Valid for (minutes)", minutes, "From 1 to 60 minutes. The link works once."),
        h("div", { class: "buttons" }, h("button", { type: "submit" }, "Make link"),
          h("button", { type: "button", class: "secondary", onclick: () => linkBox.replaceChildren() }, "Close")),
        out);
      linkBox.replaceChildren(form);
      minutes.focus();
    }

    function showCreate() {
      const name = h("input", { type: "text", required: true, maxlength: "200", autocomplete: "off" });
      const idp = idpSelect("auto");
      createBox.replaceChildren(h("form", { class: "panel", "aria-label": "Create tenant", onsubmit: async (ev) => {
        ev.preventDefault();
        const t = await attempt(status, () => api("POST", "/tenants", { name: name.value, idp: idp.value }), "Could not create the tenant");
        if (!t) return;
        await tenantsPage(r, `Created tenant ${t.name} (${t.id}). SCIM is off until its admin turns it on.`);
      } },
        h("h2", {}, "Create tenant"),
        field("Name", name),
        field("Identity provider", idp),
        h("div", { class: "buttons" }, h("button", { type: "submit" }, "Save"),
          h("button", { type: "button", class: "secondary", onclick: () => createBox.replaceChildren() }, "Cancel"))));
      name.focus();
    }

    main.replaceChildren(
      crumbs("Operator", "Tenants"),
      h("h1", {}, "Tenants"),
      h("p", { class: "lede" }, "Every customer of this gateway. Open one to change its settings, or make a portal link for its IT admin: a single-use link that opens that tenant's settings only."),
      status.el,
      h("div", { class: "buttons" }, h("button", { type: "button", onclick: showCreate }, "Create tenant")),
      createBox,
      linkBox,
      rows.length
        ? tableWrap(h("table", {},
          h("caption", { class: "sr-only" }, "Tenants"),
          h("thead", {}, h("tr", {}, ["Name", "Tenant ID", "IdP", "SCIM", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, rows)))
        : h("p", { class: "empty" }, "No tenants yet. Create the first one."));
  }

  function idpSelect(current) {
    const labels = { auto: "auto (identify the IdP on each request)", okta: "okta (Okta)", entra: "entra (Microsoft Entra ID)", generic: "generic (other SCIM 2.0 clients)" };
    const sel = h("select", {});
    for (const name of session.idps) {
      sel.append(h("option", { value: name, selected: name === current }, labels[name] || `${name} (installed plugin)`));
    }
    return sel;
  }

  // -- API Keys -------------------------------------------------------------------------------
  async function keysPage(r) {
    const t = r.tenant;
    const path = `/tenants/${encodeURIComponent(t)}/api-keys`;
    const status = statusArea();
    const createBox = h("div", {});
    const listBox = h("div", {});
    const createButton = h("button", { type: "button", onclick: showCreate }, "Create API key");

    function showCreate() {
      status.clear();
      const name = h("input", { type: "text", required: true, maxlength: "200", autocomplete: "off", placeholder: "Okta SCIM" });
      createBox.replaceChildren(h("form", { class: "panel", "aria-label": "Create API key", onsubmit: async (ev) => {
        ev.preventDefault();
        const key = await attempt(status, () => api("POST", path, { name: name.value }), "Could not create the key");
        if (!key) return;
        showKey(key);
        await loadList();
      } },
        h("h2", {}, "Create API key"),
        field("Name", name, "A descriptive name, such as Okta SCIM. Use a separate key for SCIM so you can rotate it on its own."),
        h("div", { class: "buttons" }, h("button", { type: "submit" }, "Save"),
          h("button", { type: "button", class: "secondary", onclick: () => createBox.replaceChildren() }, "Cancel"))));
      name.focus();
    }

    function showKey(key) {
      const box = h("section", { class: "panel secret", "aria-labelledby": "new-key-title" },
        h("h2", { id: "new-key-title" }, `API key “${key.name}” created`),
        notice("warn", "Copy the key now. It will not be shown again: the gateway keeps only a hash of it. If you lose it, create a new key and revoke this one."),
        copyField("API key", key.key, "Copy API key"),
        h("div", { class: "buttons" }, h("button", { type: "button", class: "secondary", onclick: () => {
          createBox.replaceChildren();
          createButton.focus();
        } }, "Done")));
      createBox.replaceChildren(box);
      box.querySelector("textarea").focus();
    }

    async function loadList() {
      const data = await attempt(status, () => api("GET", path), "Could not load the keys");
      if (!data) return;
      if (!data.api_keys.length) {
        listBox.replaceChildren(h("p", { class: "empty" }, "No API keys yet. Create one for your IdP's SCIM connection."));
        return;
      }
      const rows = data.api_keys.map((k) => {
        const actions = h("td", { class: "actions" });
        if (k.revoked) actions.append(h("span", { class: "muted" }, "—"));
        else actions.append(h("button", { type: "button", class: "danger-outline", "aria-label": `Revoke ${k.name}`,
          onclick: () => confirmRevoke(k, actions) }, "Revoke"));
        return h("tr", { class: k.revoked ? "revoked" : null },
          h("td", {}, k.name),
          h("td", { class: "mono" }, `${k.prefix}…`),
          h("td", {}, fmtTime(k.created)),
          h("td", {}, fmtTime(k.last_used)),
          h("td", {}, k.revoked ? `Revoked ${fmtTime(k.revoked)}` : "Active"),
          actions);
      });
      listBox.replaceChildren(tableWrap(h("table", {},
        h("caption", { class: "sr-only" }, "API keys"),
        h("thead", {}, h("tr", {}, ["Name", "Key", "Created", "Last used", "Status", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows))));
    }

    function confirmRevoke(k, cell) {
      const yes = h("button", { type: "button", class: "danger", onclick: async () => {
        const done = await attempt(status, () => api("DELETE", `${path}/${encodeURIComponent(k.id)}`), "Could not revoke the key");
        if (done === undefined) return;
        await loadList();
        status.show("ok", `Revoked “${k.name}”. SCIM requests with it are refused from now on.`);
      } }, "Revoke key");
      cell.replaceChildren(h("div", { class: "confirm", role: "group", "aria-label": `Confirm revoking ${k.name}` },
        h("span", {}, "SCIM calls with this key will fail at once."), yes,
        h("button", { type: "button", class: "secondary", onclick: () => loadList() }, "Cancel")));
      yes.focus();
    }

    main.replaceChildren(
      crumbs("Settings", "Account", "API Keys"),
      h("h1", {}, "API Keys"),
      h("p", { class: "lede" }, "Your IdP authenticates to the SCIM endpoint with an API key as a bearer token. The full key is shown once, when you create it."),
      status.el,
      h("div", { class: "buttons" }, createButton),
      createBox,
      listBox);
    await loadList();
  }

  // -- Identity: SCIM / Activity / Role mapping tabs ---------------------------------------------
  async function identityPage(r) {
    const t = r.tenant;
    const tenant = await attempt(null, () => api("GET", `/tenants/${encodeURIComponent(t)}`));
    if (!tenant) return;
    const tabs = [["scim", "SCIM"], ["activity", "Activity"], ["role-mapping", "Role mapping"]];
    const current = tabs.some(([k]) => k === r.tab) ? r.tab : "scim";
    const panel = h("div", { role: "tabpanel", id: "identity-panel", "aria-labelledby": `tab-${current}`, tabindex: "0" });
    const tablist = h("div", { role: "tablist", "aria-label": "Identity", class: "tabs" },
      tabs.map(([key, label]) => h("a", {
        role: "tab", id: `tab-${key}`, href: `#/tenants/${encodeURIComponent(t)}/identity/${key}`,
        "aria-selected": key === current ? "true" : "false", "aria-controls": "identity-panel",
        tabindex: key === current ? "0" : "-1",
        onkeydown: (ev) => {
          const i = tabs.findIndex(([k]) => k === key);
          const step = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
          if (!step) return;
          ev.preventDefault();
          const next = tabs[(i + step + tabs.length) % tabs.length][0];
          location.hash = `#/tenants/${encodeURIComponent(t)}/identity/${next}`;
        },
      }, label)));
    main.replaceChildren(
      crumbs("Settings", "Account", "Identity", tabs.find(([k]) => k === current)[1]),
      h("h1", {}, "Identity"),
      tablist, panel);
    if (current === "scim") scimTab(tenant, panel);
    else if (current === "activity") await activityTab(tenant, panel);
    else roleMappingTab(tenant, panel);
    const sel = tablist.querySelector('[aria-selected="true"]');
    if (sel && document.activeElement === document.body) sel.focus({ preventScroll: true });
  }

  function scimTab(tenant, panel) {
    const status = statusArea();
    const enable = checkbox("Enable SCIM provisioning", tenant.scim_enabled,
      "Off: the SCIM endpoint refuses every request and users are created at their first SSO sign-in. Turning it off deletes nothing.");
    const idp = idpSelect(tenant.idp);
    const state = h("p", { class: "state" });
    const showState = (on) => {
      state.replaceChildren(h("span", { class: on ? "pill on" : "pill off" }, on ? "SCIM is on" : "SCIM is off"));
    };
    showState(tenant.scim_enabled);
    const form = h("form", { "aria-label": "SCIM settings", onsubmit: async (ev) => {
      ev.preventDefault();
      const out = await attempt(status, () => api("PATCH", `/tenants/${encodeURIComponent(tenant.id)}`,
        { scim_enabled: enable.input.checked, idp: idp.value }), "Could not save");
      if (!out) return;
      Object.assign(tenant, out);
      showState(out.scim_enabled);
      status.show("ok", out.scim_enabled
        ? "Saved. SCIM provisioning is on: your IdP can now provision users with the endpoint URL and an API key."
        : "Saved. SCIM provisioning is off: the endpoint refuses requests; existing users stay.");
    } },
      h("h2", {}, "SCIM provisioning"),
      state,
      enable.el,
      copyField("SCIM endpoint URL", tenant.scim_url, "Copy SCIM endpoint URL"),
      field("Identity provider", idp, "auto recognises Okta and Entra ID on each request; pick yours to pin it."),
      status.el,
      h("div", { class: "buttons" }, h("button", { type: "submit" }, "Save")));
    panel.replaceChildren(h("div", { class: "split" }, h("div", { class: "col" }, h("section", {}, form), testConnection(tenant)),
      guide(tenant)));
  }

  // "Test connection": the gateway plays the chosen IdP's documented provisioning sequence against this
  // tenant (POST /tenants/{id}/selftest) and the page lists every step with its verdict.
  function testConnection(tenant) {
    const status = statusArea();
    const played = session.idps.filter((n) => n !== "auto");
    const sel = h("select", {});
    const preferred = played.includes(tenant.idp) ? tenant.idp : played[0];
    for (const name of played) sel.append(h("option", { value: name, selected: name === preferred }, name));
    const results = h("div", { class: "selftest" });
    const run = h("button", { type: "submit", class: "secondary" }, "Test connection");
    const form = h("form", { "aria-label": "Test connection", onsubmit: async (ev) => {
      ev.preventDefault();
      run.disabled = true;
      results.replaceChildren();
      status.show("info", `Playing the ${sel.value} provisioning sequence against this tenant…`);
      const report = await attempt(status, () => api("POST", `/tenants/${encodeURIComponent(tenant.id)}/selftest`, { idp: sel.value }),
        "Could not run the test");
      run.disabled = false;
      if (!report) return;
      const steps = report.steps;
      const failed = steps.filter((s) => s.result === "fail").length;
      const notRun = steps.filter((s) => s.result === "not_run").length;
      status.show(report.passed ? "ok" : "error", report.passed
        ? `Connection test passed: all ${steps.length} steps behaved as ${sel.value} expects. What the test created was removed.`
        : `Connection test failed: ${failed} of ${steps.length} steps failed` + (notRun ? `, ${notRun} not run.` : "."));
      results.replaceChildren(h("ol", { class: "steps selftest-steps", "aria-label": "Test connection steps" }, steps.map(stepItem)));
    } },
      h("h2", {}, "Test connection"),
      h("p", { class: "hint" }, "Plays your IdP's documented provisioning requests, in order, against this tenant: test users and a group are created, checked and removed."),
      field("Sequence of", sel, "The IdP whose requests to play."),
      status.el,
      h("div", { class: "buttons" }, run));
    return h("section", { class: "selftest-box" }, form, results);
  }

  function stepItem(s) {
    const label = { pass: "Pass", fail: "Fail", not_run: "Not run" }[s.result] || s.result;
    const sent = s.sent ? `${s.sent.method} ${shortUrl(s.sent.url)}` : "";
    const got = s.received ? ` → ${s.received.status}` : "";
    const kids = [h("span", { class: `pill ${s.result === "pass" ? "on" : s.result === "fail" ? "bad" : "off"}` }, label), " ",
      h("strong", {}, s.name.replace(/_/g, " ")), " ", h("code", {}, sent + got)];
    if (s.result === "fail") {
      kids.push(h("p", { class: "hint" }, s.reason));
      if (s.idp_would) kids.push(h("p", { class: "hint" }, `The IdP would: ${s.idp_would}`));
      kids.push(h("p", { class: "hint" }, `Source: ${s.doc}`));
    } else if (s.result === "not_run") {
      kids.push(h("p", { class: "hint" }, s.reason));
    }
    return h("li", { "data-result": s.result }, kids);
  }

  function shortUrl(url) {
    const i = url.indexOf("/scim/v2/");
    if (i < 0) return url;
    const rest = url.slice(i + "/scim/v2/".length);
    const j = rest.indexOf("/");
    return j < 0 ? "/" : decodeURIComponent(rest.slice(j));
  }

  function guide(tenant) {
    const url = tenant.scim_url;
    const box = h("section", { class: "col guide", "aria-labelledby": "guide-title" });
    const choices = [["okta", "Okta"], ["entra", "Entra ID"], ["other", "Other SCIM clients"]];
    let chosen = tenant.idp === "entra" ? "entra" : tenant.idp === "okta" || tenant.idp === "auto" ? "okta" : "other";
    const body = h("div", {});
    const picker = h("div", { class: "seg", role: "group", "aria-label": "Setup guide for" });

    const value = (label, text) => copyField(label, text, `Copy ${label}`);
    const step = (...kids) => h("li", {}, kids);

    function draw() {
      picker.replaceChildren(...choices.map(([k, label]) => h("button", { type: "button", "aria-pressed": k === chosen ? "true" : "false",
        onclick: () => { chosen = k; draw(); } }, label)));
      if (chosen === "okta") {
        body.replaceChildren(h("ol", { class: "steps" },
          step("In your Okta app, go to ", h("strong", {}, "Provisioning → To App"), "."),
          step("Click ", h("strong", {}, "Configure API Integration"), " and check ", h("strong", {}, "Enable API integration"), "."),
          step("Enter these values:",
            value("Base URL", url),
            value("Unique identifier field for users", "userName"),
            value("Authentication Mode", "HTTP Header"),
            h("p", { class: "hint" }, "Authorization: paste the API key from the ", h("a", { href: `#/tenants/${encodeURIComponent(tenant.id)}/api-keys` }, "API Keys"), " page (Okta sends it as Authorization: Bearer <key>).")),
          step("Click ", h("strong", {}, "Test API Credentials"), ", then ", h("strong", {}, "Save"), "."),
          step("Under ", h("strong", {}, "Provisioning → To App → Provisioning Settings"), ", enable:",
            h("ul", {}, h("li", {}, h("strong", {}, "Push New Users")), h("li", {}, h("strong", {}, "Push Profile Updates")),
              h("li", {}, h("strong", {}, "Push Groups"), " (needed for From IdP groups role mapping)"),
              h("li", {}, h("strong", {}, "Deactivate Users"))))),
          notice("info", "Keep userName as the unique identifier: with email or id, Okta cannot correlate users and every update creates a duplicate."));
      } else if (chosen === "entra") {
        body.replaceChildren(h("ol", { class: "steps" },
          step("In your Entra Enterprise Application, go to ", h("strong", {}, "Provisioning"), " and set ", h("strong", {}, "Provisioning Mode"), " to Automatic."),
          step("Under ", h("strong", {}, "Admin Credentials"), ", enter:",
            value("Tenant URL", url),
            h("p", { class: "hint" }, "Secret Token: the API key from the ", h("a", { href: `#/tenants/${encodeURIComponent(tenant.id)}/api-keys` }, "API Keys"), " page.")),
          step("Click ", h("strong", {}, "Test Connection"), ", then ", h("strong", {}, "Save"), ", and set ", h("strong", {}, "Provisioning Status"), " to On."),
          step("Optional, to push App Roles: under ", h("strong", {}, "Mappings → Provision Microsoft Entra ID Users"), ", click ", h("strong", {}, "Add New Mapping"), ":",
            value("Mapping type", "Expression"),
            value("Expression", "SingleAppRoleAssignment([appRoleAssignments])"),
            value("Target attribute", 'roles[primary eq "true"].value'),
            h("p", { class: "hint" }, "Match objects using this attribute: No. Apply this mapping: Always. For several concurrent app roles use AppRoleAssignmentsComplex([appRoleAssignments]) with target attribute roles. Then set Role mapping → Source to From IdP attribute with Attribute name roles."))));
      } else {
        body.replaceChildren(h("ol", { class: "steps" },
          step("Point your SCIM 2.0 client at:", value("Base URL", url)),
          step("Authenticate every request with the header ", h("code", {}, "Authorization: Bearer <API key>"), ", using a key from the API Keys page."),
          step("Use ", h("code", {}, "userName"), " as the unique identifier for users; send ", h("code", {}, "application/scim+json"), "."),
          step("Set Identity provider to generic on the left for strict RFC 7644 handling.")),
          notice("info", "Other SCIM 2.0 clients may work but are not officially tested or supported."));
      }
    }
    draw();
    box.append(h("h2", { id: "guide-title" }, "Setup guide"), picker, body);
    return box;
  }

  async function activityTab(tenant, panel) {
    const status = statusArea();
    const base = `/tenants/${encodeURIComponent(tenant.id)}`;
    const health = h("p", { class: "health", role: "status" });
    const debug = checkbox("Log successful events (debug)", tenant.log_successful_events,
      "Also records scim_read events with the full request and response payloads (secrets redacted). Turn it off after go-live.");
    debug.input.addEventListener("change", async () => {
      const want = debug.input.checked;
      const out = await attempt(status, () => api("PATCH", base, { log_successful_events: want }), "Could not change debug logging");
      if (!out) { debug.input.checked = !want; return; }
      tenant.log_successful_events = out.log_successful_events;
      status.show("ok", out.log_successful_events ? "Debug logging is on: successful requests are recorded as scim_read." : "Debug logging is off.");
    });
    const type = h("select", {}, h("option", { value: "" }, "All types"),
      ["scim_provision", "scim_deprovision", "scim_error", "scim_read"].map((x) => h("option", { value: x }, x)));
    const listBox = h("div", {});
    const pager = h("div", { class: "pager" });
    const cursors = [null];
    let page = 0;

    const chart = h("figure", { class: "chart", hidden: true });

    // One bar per UTC hour, errors stacked on successes; the bars' heights are relative to the busiest hour.
    // The figure is one image to assistive technology, its aria-label the same numbers in words.
    function drawChart(hourly) {
      const hourOf = (b) => b.hour.slice(11, 13);
      const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
      const ok = hourly.reduce((n, b) => n + b.successful, 0);
      const bad = hourly.reduce((n, b) => n + b.errors, 0);
      const most = Math.max(1, ...hourly.map((b) => b.successful + b.errors));
      const busy = hourly.filter((b) => b.errors).map((b) => `${hourOf(b)}:00 (${b.errors})`);
      const label = `Requests per hour over the last 24 hours (UTC, ${hourOf(hourly[0])}:00 to now): `
        + `${plural(ok, "successful event", "successful events")}, ${plural(bad, "error", "errors")}`
        + (busy.length ? `; errors at ${busy.join(", ")}.` : ".");
      const cols = hourly.map((b) => {
        // Heights by flex-grow shares of the column: a gap of (busiest - this hour), then errors, then successes.
        // Set through the CSSOM, which the CSP allows (style attributes it does not).
        const seg = (cls, n) => {
          const el = h("span", { class: cls });
          el.style.flexGrow = String(n);
          return el;
        };
        return h("div", { class: "col", "data-hour": b.hour, "data-successful": b.successful, "data-errors": b.errors,
          title: `${hourOf(b)}:00 UTC: ${plural(b.successful, "successful", "successful")}, ${plural(b.errors, "error", "errors")}` },
          h("span", { class: "stack" }, seg("gap", most - b.successful - b.errors), seg("bar-err", b.errors), seg("bar-ok", b.successful)),
          h("span", { class: "lbl" }, hourOf(b)));
      });
      chart.replaceChildren(
        h("figcaption", {}, "Last 24 hours",
          h("span", { class: "legend", "aria-hidden": "true" },
            h("span", { class: "key ok" }, "Successful"), h("span", { class: "key err" }, "Errors (scim_error)"))),
        h("div", { class: "bars", role: "img", "aria-label": label, "data-max": most }, cols));
      chart.hidden = false;
    }

    async function loadHealth() {
      const hv = await attempt(status, () => api("GET", `${base}/activity/health`), "Could not load the connection health");
      if (!hv) return;
      health.replaceChildren(
        h("span", {}, "Last request from your IdP: ", h("strong", {}, hv.last_request ? fmtTime(hv.last_request) : "none yet")),
        h("span", { class: hv.errors_24h ? "bad" : "" }, "Errors in the last 24 hours: ", h("strong", {}, String(hv.errors_24h))));
      drawChart(hv.hourly);
    }

    const scimBase = `/scim/v2/${tenant.id}`;
    function shortPath(p) { return p && p.startsWith(scimBase) ? p.slice(scimBase.length) || "/" : p; }
    // The user's email or the group's name; for a failed or debug-logged request, what it was about.
    function who(e) {
      const req = e.request && typeof e.request === "object" ? e.request : {};
      const primary = Array.isArray(req.emails) ? (req.emails.find((m) => m && m.primary) || req.emails[0]) : null;
      const res = e.response && typeof e.response === "object" ? e.response : {};
      const subject = e.email || e.userName || e.displayName || (primary && primary.value) || req.userName || req.displayName
        || res.userName || res.displayName;
      const call = e.path ? `${e.method} ${shortPath(e.path)}` : "";
      if (subject && call) return `${subject} (${call})`;
      return subject || call || e.resource_id || "—";
    }

    function detailView(e) {
      const parts = [];
      const kv = [["Time", fmtTime(e.created)], ["Type", e.type], ["HTTP status", e.status], ["IdP plugin", e.client || "—"]];
      if (e.method) kv.push(["Request", `${e.method} ${e.path}`]);
      if (e.action) kv.push(["Action", `${e.resource_type || ""} ${e.action}`]);
      if (e.resource_id) kv.push(["Resource id", e.resource_id]);
      if (e.scimType) kv.push(["scimType", e.scimType]);
      if (e.detail) kv.push(["Detail", e.detail]);
      if (e.request_id) kv.push(["Request id", e.request_id]);
      parts.push(h("dl", { class: "kv" }, kv.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])));
      if (e.request !== undefined && e.request !== null) parts.push(h("h3", {}, "Request payload"), h("pre", { tabindex: "0", "aria-label": "Request payload" }, JSON.stringify(e.request, null, 2)));
      if (e.response !== undefined && e.response !== null) parts.push(h("h3", {}, "Response payload"), h("pre", { tabindex: "0", "aria-label": "Response payload" }, JSON.stringify(e.response, null, 2)));
      return parts;
    }

    async function load() {
      const q = new URLSearchParams({ limit: "25" });
      if (type.value) q.set("type", type.value);
      if (cursors[page]) q.set("cursor", cursors[page]);
      const data = await attempt(status, () => api("GET", `${base}/activity?${q}`), "Could not load the activity");
      if (!data) return;
      cursors[page + 1] = data.next_cursor;
      if (!data.events.length) {
        listBox.replaceChildren(h("p", { class: "empty" }, page ? "No older events." : "No events yet. They appear here as soon as your IdP sends its first request."));
      } else {
        const rows = [];
        for (const e of data.events) {
          const detailId = nextId("ev");
          const btn = h("button", { type: "button", class: "link", "aria-expanded": "false", "aria-controls": detailId,
            "aria-label": `Details of ${e.type} ${who(e)} at ${fmtTime(e.created)}` }, "Details");
          const detailRow = h("tr", { class: "detail", id: detailId, hidden: true }, h("td", { colspan: "7" }, h("div", {}, detailView(e))));
          btn.addEventListener("click", () => {
            const open = btn.getAttribute("aria-expanded") === "true";
            btn.setAttribute("aria-expanded", open ? "false" : "true");
            detailRow.hidden = open;
          });
          const err = e.type === "scim_error" ? [e.scimType, e.detail].filter(Boolean).join(": ") : "";
          rows.push(h("tr", { class: `ev ${e.type}` },
            h("td", { class: "nowrap" }, fmtTime(e.created)),
            h("td", {}, h("span", { class: `tag ${e.type}` }, e.type)),
            h("td", { class: "wrap" }, who(e)),
            h("td", {}, String(e.status ?? "")),
            h("td", {}, e.client || "—"),
            h("td", { class: "wrap" }, err),
            h("td", {}, btn)), detailRow);
        }
        listBox.replaceChildren(tableWrap(h("table", { class: "events" },
          h("caption", { class: "sr-only" }, "Activity, newest first"),
          h("thead", {}, h("tr", {}, ["Time", "Type", "User or group", "Status", "IdP plugin", "Error", ""].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, rows))));
      }
      pager.replaceChildren(
        h("button", { type: "button", class: "secondary", disabled: page === 0, onclick: () => { page -= 1; load(); } }, "Newer"),
        h("span", { class: "muted" }, `Page ${page + 1}`),
        h("button", { type: "button", class: "secondary", disabled: !data.next_cursor, onclick: () => { page += 1; load(); } }, "Older"));
    }

    type.addEventListener("change", () => { cursors.length = 1; page = 0; load(); });
    panel.replaceChildren(
      health,
      chart,
      status.el,
      debug.el,
      h("div", { class: "toolbar" }, field("Type", type),
        h("button", { type: "button", class: "secondary", onclick: () => { loadHealth(); load(); } }, "Refresh")),
      listBox, pager);
    await Promise.all([loadHealth(), load()]);
  }

  function roleMappingTab(tenant, panel) {
    const status = statusArea();
    const m = tenant.role_mapping;
    const sources = [["portal", "Portal-managed", "SCIM does not update roles. Administrators set them on the Users page."],
      ["idp_groups", "From IdP groups", "Roles derived from SCIM group memberships; membership changes in your IdP flow through on the next sync."],
      ["idp_attribute", "From IdP attribute", "Roles derived from a SCIM user attribute (for Entra App Roles: roles)."]];
    const radios = {};
    const fieldset = h("fieldset", {}, h("legend", {}, "Source"), sources.map(([value, label, hint]) => {
      const id = nextId("src");
      const hid = nextId("hint");
      radios[value] = h("input", { type: "radio", name: "source", value, id, checked: m.source === value, "aria-describedby": hid,
        onchange: show });
      return h("div", { class: "radio" }, radios[value], h("label", { for: id }, label), h("p", { class: "hint", id: hid }, hint));
    }));

    function pairTable(caption, leftLabel, rightLabel, entries, addLabel, emptyText) {
      const tbody = h("tbody", {});
      const table = h("table", { class: "pairs" }, h("caption", {}, caption),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, leftLabel), h("th", { scope: "col" }, rightLabel), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Remove")))),
        tbody);
      const wrap = tableWrap(table);
      const empty = h("p", { class: "hint" }, emptyText);
      const refresh = () => { wrap.hidden = tbody.rows.length === 0; empty.hidden = tbody.rows.length > 0; labelRows(table); };
      const addRow = (k, v) => {
        const a = h("input", { type: "text", value: k || "", "aria-label": leftLabel });
        const b = h("input", { type: "text", value: v || "", "aria-label": rightLabel });
        const tr = h("tr", {}, h("td", {}, a), h("td", {}, b),
          h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": "Remove this row", onclick: () => { tr.remove(); refresh(); } }, "Remove")));
        tbody.append(tr);
        refresh();
        return a;
      };
      for (const [k, v] of entries) addRow(k, v);
      refresh();
      const el = h("div", {}, empty, wrap,
        h("button", { type: "button", class: "secondary", onclick: () => addRow("", "").focus() }, addLabel));
      return { el, rows: () => [...tbody.rows].map((tr) => [tr.cells[0].firstChild.value.trim(), tr.cells[1].firstChild.value.trim()]).filter(([k]) => k) };
    }
    const split = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
    const groups = pairTable("IdP group → roles", "IdP group name", "Roles (comma-separated)",
      Object.entries(m.group_roles || {}).map(([g, r]) => [g, r.join(", ")]), "Add group",
      "No groups mapped yet. Add the IdP groups whose members get roles; a group matches by its name (any case) or id.");
    const attribute = h("input", { type: "text", value: m.attribute || "roles", autocomplete: "off", spellcheck: "false" });
    const values = pairTable("Attribute value → role (optional)", "IdP value", "Role",
      Object.entries(m.attribute_values || {}).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v]), "Add value",
      "No value pairs: each value of the attribute is used as the role name.");
    const defaults = h("input", { type: "text", value: (m.default_roles || []).join(", "), autocomplete: "off" });
    const groupsBox = h("div", { class: "sub" }, groups.el);
    const attrBox = h("div", { class: "sub" }, field("Attribute name", attribute, "The SCIM user attribute holding the roles (default: roles)."), values.el);
    const defaultsBox = h("div", { class: "sub" }, field("Default roles (comma-separated)", defaults, "Given to a user whom the mapping gives no role."));

    function source() { return Object.keys(radios).find((k) => radios[k].checked) || "portal"; }
    function show() {
      const s = source();
      groupsBox.hidden = s !== "idp_groups";
      attrBox.hidden = s !== "idp_attribute";
      defaultsBox.hidden = s === "portal";
    }
    show();

    const form = h("form", { "aria-label": "Role mapping", onsubmit: async (ev) => {
      ev.preventDefault();
      const s = source();
      const mapping = { source: s, default_roles: split(defaults.value) };
      if (s === "idp_groups") {
        mapping.group_roles = Object.fromEntries(groups.rows().map(([g, r]) => [g, split(r)]));
      }
      if (s === "idp_attribute") {
        mapping.attribute = attribute.value.trim() || "roles";
        const pairs = values.rows();
        mapping.attribute_values = pairs.length ? Object.fromEntries(pairs.map(([k, v]) => [k, split(v).length > 1 ? split(v) : v])) : null;
      }
      if (s === "portal") mapping.default_roles = [];
      const out = await attempt(status, () => api("PATCH", `/tenants/${encodeURIComponent(tenant.id)}`, { role_mapping: mapping }), "Could not save the role mapping");
      if (!out) return;
      Object.assign(tenant, out);
      const n = out.roles_recomputed || 0;
      let text = `Saved. ${n} ${n === 1 ? "user's roles were" : "users' roles were"} recomputed.`;
      if (!out.scim_enabled && s !== "portal") text += " SCIM is off, so roles follow this mapping at each SSO sign-in.";
      if (s === "portal") text = "Saved. Roles are portal-managed: SCIM no longer changes them; set them on the Users page.";
      status.show("ok", text);
    } },
      h("p", { class: "lede" }, "How SCIM-provisioned users get their roles. It runs at provisioning time; saving recomputes the roles of SCIM-provisioned users at once."),
      fieldset, groupsBox, attrBox, defaultsBox, status.el,
      h("div", { class: "buttons" }, h("button", { type: "submit" }, "Save")));
    panel.replaceChildren(form);
  }

  // -- Users --------------------------------------------------------------------------------------
  async function usersPage(r) {
    const t = r.tenant;
    const base = `/tenants/${encodeURIComponent(t)}`;
    const status = statusArea();
    const tenant = await attempt(null, () => api("GET", base));
    if (!tenant) return;
    const portalManaged = tenant.role_mapping.source === "portal";
    const search = h("input", { type: "search", autocomplete: "off", placeholder: "userName or email" });
    const listBox = h("div", {});
    const pager = h("div", { class: "pager" });
    const cursors = [null];
    let page = 0;

    function rolesCell(u) {
      const td = h("td", { class: "wrap" });
      const draw = () => {
        td.replaceChildren(h("div", { class: "roles" }, h("span", {}, u.roles.length ? u.roles.join(", ") : "—"),
          portalManaged ? h("button", { type: "button", class: "link", "aria-label": `Edit roles of ${u.userName}`, onclick: edit }, "Edit") : null));
      };
      const edit = () => {
        const input = h("input", { type: "text", value: u.roles.join(", "), "aria-label": `Roles of ${u.userName} (comma-separated)` });
        td.replaceChildren(h("form", { class: "inline", onsubmit: async (ev) => {
          ev.preventDefault();
          const roles = input.value.split(",").map((x) => x.trim()).filter(Boolean);
          const out = await attempt(status, () => api("PUT", `${base}/users/${encodeURIComponent(u.id)}/roles`, { roles }), "Could not save the roles");
          if (!out) return;
          u.roles = out.roles;
          status.show("ok", `Saved the roles of ${u.userName}.`);
          draw();
        } }, input, h("button", { type: "submit" }, "Save"), h("button", { type: "button", class: "secondary", onclick: draw }, "Cancel")));
        input.focus();
      };
      draw();
      return td;
    }

    async function load() {
      const q = new URLSearchParams({ limit: "25" });
      if (search.value.trim()) q.set("search", search.value.trim());
      if (cursors[page]) q.set("cursor", cursors[page]);
      const data = await attempt(status, () => api("GET", `${base}/users?${q}`), "Could not load the users");
      if (!data) return;
      cursors[page + 1] = data.next_cursor;
      if (!data.users.length) {
        listBox.replaceChildren(h("p", { class: "empty" }, search.value.trim() ? "No user matches this search." : "No users yet. They appear when your IdP provisions them, or at their first SSO sign-in."));
      } else {
        listBox.replaceChildren(h("p", { class: "muted" }, `${data.total} ${data.total === 1 ? "user" : "users"}${search.value.trim() ? " match" : ""}`),
          tableWrap(h("table", {},
            h("caption", { class: "sr-only" }, "Users"),
            h("thead", {}, h("tr", {}, ["userName", "Email", "Active", "Roles", "Provisioned by"].map((c) => h("th", { scope: "col" }, c)))),
            h("tbody", {}, data.users.map((u) => h("tr", {},
              h("td", { class: "wrap" }, u.userName),
              h("td", { class: "wrap" }, u.email || "—"),
              h("td", {}, u.active ? "Yes" : "No"),
              rolesCell(u),
              h("td", {}, u.provisioned_by === "jit" ? "JIT (SSO sign-in)" : "SCIM")))))));
      }
      pager.replaceChildren(
        h("button", { type: "button", class: "secondary", disabled: page === 0, onclick: () => { page -= 1; load(); } }, "Previous"),
        h("span", { class: "muted" }, `Page ${page + 1}`),
        h("button", { type: "button", class: "secondary", disabled: !data.next_cursor, onclick: () => { page += 1; load(); } }, "Next"));
    }

    const labels = { idp_groups: "From IdP groups", idp_attribute: "From IdP attribute" };
    main.replaceChildren(
      crumbs("Settings", "Account", "Users"),
      h("h1", {}, "Users"),
      h("p", { class: "lede" }, portalManaged
        ? "Roles are portal-managed: edit them here. SCIM never changes them."
        : `Roles come from the role mapping (${labels[tenant.role_mapping.source]}): change them in your IdP, or switch Role mapping to Portal-managed to edit them here.`),
      status.el,
      h("form", { class: "toolbar", role: "search", "aria-label": "Find users", onsubmit: (ev) => { ev.preventDefault(); cursors.length = 1; page = 0; load(); } },
        field("Search users", search), h("button", { type: "submit", class: "secondary" }, "Search")),
      listBox, pager);
    await load();
  }

  // -- start ----------------------------------------------------------------------------------
  async function start() {
    try {
      const resp = await fetch("/portal/session", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (resp.status === 401) { location.replace("/portal/login?expired=1"); return; }
      if (!resp.ok) throw new Error(`status ${resp.status}`);
      session = await resp.json();
    } catch (e) {
      showError("The gateway could not be reached. Reload the page to try again.");
      return;
    }
    window.addEventListener("hashchange", () => { route().then(() => main.focus({ preventScroll: true })); });
    await route();
  }
  start();
})();
