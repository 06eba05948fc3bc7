// 办事通 chat page: plain JavaScript, no build step, no inline scripts (the page runs under CSP 'self').
// The conversation is kept in localStorage under the session's (non-secret) key, so a reload shows
// it again; a message that could not be sent stays in it, marked, until it is sent.
(function () {
  "use strict";

  const $ = (sel) => document.querySelector(sel);
  const list = $("#main");
  const input = $("#input");
  const form = $("#composer");
  const offline = $("#offline");
  const agentBanner = $("#agent-banner");
  const suggest = $("#suggest");
  const POLL_MS = 2500;

  let session = document.body.dataset.session;
  let state = load();
  let sending = Promise.resolve();
  let pollTimer = null;
  let pollEnabled = true;
  let retryTimer = null;

  function storageKey() { return "bst.chat." + session; }

  function load() {
    try {
      const raw = localStorage.getItem(storageKey());
      if (raw) return JSON.parse(raw);
    } catch (e) { /* private mode or corrupt entry: start empty */ }
    return { items: [], lastUpdate: 0, checks: {}, seq: 0 };
  }

  function save() {
    try { localStorage.setItem(storageKey(), JSON.stringify(state)); } catch (e) { /* storage full */ }
  }

  // ------------------------------------------------------------------ rendering

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v; else node.setAttribute(k, v === true ? "" : v);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function isSource(line) {
    return /^(来源：|以上依据|依据：)/.test(line);
  }

  // Lines "1. 身份证（原件）" after a heading that speaks of 材料 form a checklist to tick off.
  // `part` names the block ("" the first bubble, "d" the detail behind 「展开全部」) so ticks are kept apart.
  function renderLines(item, container, text, part, dropSources) {
    const lines = (text || "").split("\n");
    const checklist = /材料/.test(lines[0] || "");
    let ul = null;
    lines.forEach((line, i) => {
      const m = line.match(/^(\d+)\.\s*(.+)$/);
      if (checklist && m && item.who === "bot") {
        if (!ul) {
          ul = el("ul", { class: "checklist", "aria-label": "材料清单（可勾选）" });
          container.appendChild(ul);
        }
        const key = item.id + ":" + part + m[1];
        const id = "chk-" + item.id + "-" + part + m[1];
        const li = el("li");
        const box = el("input", { type: "checkbox", id: id });
        box.checked = !!state.checks[key];
        box.addEventListener("change", () => { state.checks[key] = box.checked; save(); });
        li.appendChild(box);
        li.appendChild(el("label", { for: id }, m[2]));
        ul.appendChild(li);
        return;
      }
      ul = null;
      if (item.who === "bot" && isSource(line)) {
        if (dropSources) return;  // the reply's sources say it as one short line (sourceLine)
        const p = el("p", { class: "source" }, line);
        if (item.guide_id) {
          p.appendChild(document.createTextNode(" "));
          p.appendChild(el("a", { href: "/guides/" + encodeURIComponent(item.guide_id), class: "guide-link" }, "查看办事指南"));
        }
        container.appendChild(p);
        return;
      }
      if (line.trim() === "" && i > 0) return;
      container.appendChild(el("p", {}, line));
    });
  }

  // The reply's sources as one short line: the guide (with its page), a policy clause, a law's
  // article with 「依据」 opening the clause text.
  function sourceLine(item, sources) {
    const p = el("p", { class: "source" });
    p.appendChild(document.createTextNode("来源："));
    let guideLinked = false;
    sources.forEach((s, i) => {
      if (i > 0) p.appendChild(document.createTextNode("；"));
      if (s.type === "guide") {
        p.appendChild(document.createTextNode("办事指南《" + (s.title || "") + "》"));
        if (s.id) {
          p.appendChild(document.createTextNode(" "));
          p.appendChild(el("a", { href: "/guides/" + encodeURIComponent(s.id), class: "guide-link" }, "查看办事指南"));
          guideLinked = true;
        }
      } else if (s.type === "article") {
        const name = "《" + (s.title || "") + "》" + (s.article || "");
        p.appendChild(document.createTextNode(name + " "));
        if (s.url) p.appendChild(el("a", { href: s.url, class: "basis-link", "aria-label": "依据：" + name + "原文" }, "依据"));
      } else {
        p.appendChild(document.createTextNode([s.doc_number || ("《" + (s.title || "") + "》"), s.clause].filter(Boolean).join(" ")));
      }
    });
    if (item.guide_id && !guideLinked) {
      p.appendChild(document.createTextNode(" "));
      p.appendChild(el("a", { href: "/guides/" + encodeURIComponent(item.guide_id), class: "guide-link" }, "查看办事指南"));
    }
    return p;
  }

  function renderText(item, container) {
    const reply = item.reply || {};
    const sources = Array.isArray(reply.sources) ? reply.sources.filter((s) => s && s.type) : [];
    renderLines(item, container, item.text, "", sources.length > 0);
    if (reply.detail) {
      const id = "detail-" + item.id;
      const more = el("div", { class: "detail", id: id });
      renderLines(item, more, reply.detail, "d", sources.length > 0);
      more.hidden = !item.expanded;
      const btn = el("button", { type: "button", class: "expand", "aria-expanded": item.expanded ? "true" : "false",
                                 "aria-controls": id }, item.expanded ? "收起" : "展开全部");
      btn.addEventListener("click", () => {
        item.expanded = !item.expanded;
        save();
        more.hidden = !item.expanded;
        btn.setAttribute("aria-expanded", item.expanded ? "true" : "false");
        btn.textContent = item.expanded ? "收起" : "展开全部";
      });
      container.appendChild(btn);
      container.appendChild(more);
    }
    if (sources.length) container.appendChild(sourceLine(item, sources));
  }

  function renderItem(item) {
    const wrap = el("div", { class: "msg " + item.who + (item.status === "failed" ? " failed" : ""), "data-id": item.id });
    if (item.who === "agent") wrap.appendChild(el("div", { class: "who" }, item.agent ? "人工客服 " + item.agent : "人工客服"));
    const bubble = el("div", { class: "bubble" });
    if (item.who === "user") bubble.textContent = item.text; else renderText(item, bubble);
    wrap.appendChild(bubble);
    if (item.who === "user" && item.status === "failed") {
      wrap.appendChild(el("div", { class: "status" }, "未发送，连接恢复后可重试"));
    } else if (item.who === "user" && item.status === "sending") {
      wrap.appendChild(el("div", { class: "status" }, "发送中…"));
    }
    if (item.buttons && item.buttons.length) {
      // An answer's next-step buttons are trimmed in 长辈模式 (CSS); a choice to make (which matter,
      // which district, which slot) never is.
      // Without a reply payload (stored before it, or not sent), an answer is a message citing its sources.
      const kind = item.reply ? item.reply.kind : ((item.text || "").split("\n").some(isSource) ? "guide" : null);
      const trim = kind === "guide" || kind === "policy" || kind === "fallback";
      const group = el("div", { class: "buttons" + (trim ? " answer-buttons" : ""), role: "group", "aria-label": "可选操作" });
      item.buttons.forEach((b) => {
        const btn = el("button", { type: "button", class: "option" }, b.title);
        btn.addEventListener("click", () => send(b.payload || b.title, b.title));
        group.appendChild(btn);
      });
      wrap.appendChild(group);
    }
    if (item.feedback) wrap.appendChild(renderFeedback(item));
    return wrap;
  }

  function renderFeedback(item) {
    const box = $("#feedback-tpl").content.firstElementChild.cloneNode(true);
    box.querySelectorAll(".vote").forEach((btn) => {
      const vote = Number(btn.dataset.vote);
      btn.setAttribute("aria-pressed", item.vote === vote ? "true" : "false");
      btn.addEventListener("click", () => vote === 1 ? giveFeedback(item, 1, null) : askReason(item, box));
    });
    if (item.vote) box.appendChild(el("span", { class: "thanks" }, "感谢您的反馈"));
    return box;
  }

  function askReason(item, box) {
    giveFeedback(item, -1, null, true);
    if (box.querySelector("form")) return;
    const f = el("form", { class: "reason" });
    const id = "reason-" + item.id;
    f.appendChild(el("label", { for: id }, "哪里不满意？（可不填）"));
    const ta = el("textarea", { id: id, rows: "2", maxlength: "500" });
    f.appendChild(ta);
    f.appendChild(el("button", { type: "submit" }, "提交原因"));
    f.addEventListener("submit", (ev) => {
      ev.preventDefault();
      giveFeedback(item, -1, ta.value.trim() || null);
    });
    box.appendChild(f);
    ta.focus();
  }

  let voting = Promise.resolve();
  function giveFeedback(item, vote, reason, keepOpen) {
    // In order: a 👎 and its reason a moment later must reach the server in that order.
    voting = voting.then(() => postFeedback(item, vote, reason, keepOpen));
    return voting;
  }

  async function postFeedback(item, vote, reason, keepOpen) {
    try {
      const r = await fetch("/api/feedback", {
        method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
        body: JSON.stringify({ turn_id: item.turn_id, vote: vote, reason: reason }),
      });
      if (!r.ok) throw new Error("feedback " + r.status);
      item.vote = vote;
      item.reason = reason;
      save();
      if (!keepOpen) rerender(item);
      else {
        const node = list.querySelector('[data-id="' + item.id + '"] .feedback');
        if (node) node.querySelectorAll(".vote").forEach((b) =>
          b.setAttribute("aria-pressed", Number(b.dataset.vote) === vote ? "true" : "false"));
      }
    } catch (e) {
      setOffline(true);
    }
  }

  function rerender(item) {
    const old = list.querySelector('[data-id="' + item.id + '"]');
    const fresh = renderItem(item);
    if (old) old.replaceWith(fresh); else list.appendChild(fresh);
    scrollToEnd();
  }

  function renderAll() {
    list.querySelectorAll(".msg:not(.intro)").forEach((n) => n.remove());
    state.items.forEach((item) => list.appendChild(renderItem(item)));
    suggest.hidden = state.items.length > 0;
    scrollToEnd();
  }

  function scrollToEnd() {
    requestAnimationFrame(() => { list.scrollTop = list.scrollHeight; });
  }

  function add(item) {
    item.id = ++state.seq;
    state.items.push(item);
    save();
    list.appendChild(renderItem(item));
    suggest.hidden = true;
    scrollToEnd();
    return item;
  }

  // ------------------------------------------------------------------ sending

  function setOffline(on) {
    offline.hidden = !on;
    clearTimeout(retryTimer);
    if (on) retryTimer = setTimeout(retryFailed, 5000);
  }

  function send(payload, title) {
    const text = (payload || "").trim();
    if (!text) return;
    const item = add({ who: "user", text: title || text, payload: text, status: "sending" });
    deliver(item);
  }

  function deliver(item) {
    // One message at a time, in order: the bot's replies must follow the questions they answer.
    sending = sending.then(() => post(item));
    return sending;
  }

  async function post(item) {
    let replies;
    try {
      const r = await fetch("/api/chat", {
        method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
        body: JSON.stringify({ sender: "web", message: item.payload }),
      });
      if (r.status >= 500 || r.status === 0) throw new Error("server " + r.status);
      replies = await r.json();
      if (!Array.isArray(replies)) replies = [{ text: replies.detail || "请求有误，请换个说法再试。" }];
    } catch (e) {
      item.status = "failed";
      save();
      rerender(item);
      setOffline(true);
      return;
    }
    item.status = "sent";
    save();
    rerender(item);
    setOffline(false);
    const shown = replies.filter((m) => m.text || (m.buttons && m.buttons.length));
    shown.forEach((m, i) => {
      add({
        who: "bot", text: m.text || "", buttons: m.buttons || [], turn_id: m.turn_id, guide_id: m.guide_id,
        reply: replyOf(m),
        // 👍/👎 once per answer: on its last message.
        feedback: !!m.turn_id && i === shown.length - 1 && !(m.custom && m.custom.handoff),
      });
    });
    if (!pollTimer && pollEnabled) poll();
  }

  // What the page keeps of the reply payload (the contract's `reply`; Rasa's REST channel may nest it
  // under `custom`): enough to render it again after a reload.
  function replyOf(m) {
    const r = m.reply || (m.custom && m.custom.reply);
    if (!r || typeof r !== "object") return null;
    return { kind: r.kind || null, detail: typeof r.detail === "string" ? r.detail : "",
             sources: Array.isArray(r.sources) ? r.sources : [] };
  }

  function retryFailed() {
    const failed = state.items.filter((i) => i.who === "user" && i.status === "failed");
    if (!failed.length) { setOffline(false); return; }
    failed.forEach((item) => { item.status = "sending"; rerender(item); deliver(item); });
  }

  // ------------------------------------------------------------------ agent messages

  async function poll() {
    clearTimeout(pollTimer);
    pollTimer = null;
    if (!pollEnabled) return;
    try {
      const r = await fetch("/api/chat/updates?after=" + (state.lastUpdate || 0), { credentials: "same-origin" });
      if (r.status === 404 || r.status === 405) { pollEnabled = false; return; }  // no agent console deployed
      if (r.ok) {
        const data = await r.json();
        const h = data.handoff;
        if (h && h.status === "taken") {
          agentBanner.textContent = "人工客服 " + (h.agent || "") + " 正在为您服务";
          agentBanner.hidden = false;
        } else {
          agentBanner.hidden = true;
        }
        (data.messages || []).forEach((m) => {
          state.lastUpdate = Math.max(state.lastUpdate || 0, m.id);
          if (m.who === "agent") add({ who: "agent", text: m.text, agent: h && h.agent });
        });
        save();
      }
    } catch (e) { /* offline: the chat's own banner says so; keep polling */ }
    if (document.visibilityState !== "hidden") pollTimer = setTimeout(poll, POLL_MS);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && pollEnabled && !pollTimer) poll();
  });

  // ------------------------------------------------------------------ controls

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value;
    if (!text.trim()) { input.focus(); return; }
    input.value = "";
    autosize();
    send(text);
    input.focus();
  });

  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  }
  input.addEventListener("input", autosize);

  $("#handoff").addEventListener("click", () => send("/human_handoff", "转人工"));
  $("#retry").addEventListener("click", retryFailed);
  window.addEventListener("online", retryFailed);
  suggest.querySelectorAll(".chip").forEach((chip) =>
    chip.addEventListener("click", () => send(chip.dataset.payload, chip.dataset.title || chip.textContent)));

  $("#new-chat").addEventListener("click", async () => {
    try {
      const r = await fetch("/api/session/new", { method: "POST", credentials: "same-origin" });
      if (!r.ok) throw new Error("session " + r.status);
      const data = await r.json();
      try { localStorage.removeItem(storageKey()); } catch (e) { /* ignore */ }
      session = data.session;
      document.body.dataset.session = session;
      state = { items: [], lastUpdate: 0, checks: {}, seq: 0 };
      save();
      agentBanner.hidden = true;
      renderAll();
      input.focus();
    } catch (e) {
      setOffline(true);
    }
  });

  // Keep the composer above the on-screen keyboard: size the page to the visual viewport.
  if (window.visualViewport) {
    const fit = () => {
      document.documentElement.style.setProperty("--vvh", window.visualViewport.height + "px");
      scrollToEnd();
    };
    window.visualViewport.addEventListener("resize", fit);
    fit();
  }

  renderAll();
  if (state.items.some((i) => i.who === "user" && i.status !== "sent")) {
    state.items.forEach((i) => { if (i.who === "user" && i.status === "sending") i.status = "failed"; });
    renderAll();
    setOffline(true);
  }
  poll();
})();
