// 12345 agent console: search as you type, a ready answer to copy, and the live hand-over queue.
// No innerHTML with server or user text anywhere: every node is built with textContent.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const BASE_TITLE = document.title;
  const SEARCH_DELAY = 180;  // ms after the last key before searching
  const ANSWER_DELAY = 450;  // the ready answer is heavier: wait for a pause in typing

  // ------------------------------------------------------------------ helpers
  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }

  // Text with the matched words wrapped in <mark>, built node by node (never parsed as HTML).
  function highlighted(text, terms) {
    const frag = document.createDocumentFragment();
    const words = (terms || []).filter((t) => t).sort((a, b) => b.length - a.length);
    const lower = text.toLowerCase();
    let plain = "";
    let i = 0;
    while (i < text.length) {
      const w = words.find((t) => lower.startsWith(t.toLowerCase(), i));
      if (w) {
        if (plain) { frag.appendChild(document.createTextNode(plain)); plain = ""; }
        frag.appendChild(el("mark", null, text.substr(i, w.length)));
        i += w.length;
      } else {
        plain += text[i];
        i += 1;
      }
    }
    if (plain) frag.appendChild(document.createTextNode(plain));
    return frag;
  }

  async function api(method, url, body, signal) {
    const opts = { method, headers: {}, signal, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(url, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); }
    if (!r.ok) {
      const err = new Error((data && typeof data.detail === "string") ? data.detail : "请求失败（" + r.status + "）");
      err.status = r.status;
      throw err;
    }
    return data;
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const m = Math.floor(seconds / 60), s = seconds % 60;
    if (m >= 60) return Math.floor(m / 60) + "小时" + (m % 60) + "分";
    return m ? m + "分" + s + "秒" : s + "秒";
  }

  // ------------------------------------------------------------------ look-up
  const q = $("q"), hitsList = $("hits"), status = $("search-status");
  const answerText = $("answer-text"), copyBtn = $("copy"), copied = $("copied"), guideLink = $("guide-link");
  let hits = [], selected = -1, searchCtl = null, answerCtl = null, searchTimer = 0, answerTimer = 0;
  let lastQuery = "";

  function sourceLine(h) {
    if (h.source_type === "guide") {
      return "办事指南《" + h.title + "》" + (h.reviewed ? " · " + h.reviewed + " 审核" : "");
    }
    const parts = [h.doc_number || "《" + h.title + "》"];
    if (h.clause && h.clause !== "正文") parts.push(h.clause);
    if (h.issuer) parts.push(h.issuer);
    if (h.date) parts.push(h.date);
    return "政策条款：" + parts.join(" · ");
  }

  function renderHits() {
    hitsList.replaceChildren();
    hits.forEach((h, i) => {
      const li = el("li", "hit");
      li.id = "hit-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === selected));
      li.dataset.index = String(i);
      const head = el("div", "hit-head");
      const title = el("span", "hit-title");
      title.appendChild(highlighted(h.title, h.terms));
      head.appendChild(title);
      const rel = el("span", "rel rel-" + ({ "高": "high", "中": "mid", "低": "low" }[h.relevance] || "low"),
        "相关度：" + h.relevance);
      head.appendChild(rel);
      if (h.region !== "厦门市") {
        head.appendChild(el("span", "region-tag", h.region === "东平县" ? "外地文件（山东东平县）" : h.region + "规定"));
      }
      li.appendChild(head);
      li.appendChild(el("div", "hit-source", sourceLine(h)));
      if (h.region_note) li.appendChild(el("div", "region-note", h.region_note));
      const snip = el("p", "snippet");
      snip.appendChild(highlighted(h.snippet, h.terms));
      li.appendChild(snip);
      const full = el("div", "fulltext");
      full.hidden = true;
      full.appendChild(highlighted(h.text, h.terms));
      li.appendChild(full);
      li.addEventListener("click", () => {
        select(i);
        openHit(i);
      });
      hitsList.appendChild(li);
    });
    q.setAttribute("aria-activedescendant", selected >= 0 ? "hit-" + selected : "");
    showHitLink();
  }

  // An option holds no link of its own (nested-interactive, WCAG 4.1.2): the selected hit's guide is
  // linked once, outside the list, and follows the selection.
  const hitLink = $("hit-guide");
  function showHitLink() {
    const h = hits[selected];
    hitLink.hidden = !(h && h.guide_id);
    if (h && h.guide_id) {
      hitLink.href = "/guides/" + encodeURIComponent(h.guide_id);
      hitLink.textContent = "打开完整指南《" + h.title + "》";
    }
  }

  function select(i) {
    if (!hits.length) return;
    selected = Math.max(0, Math.min(hits.length - 1, i));
    [...hitsList.children].forEach((li, j) => li.setAttribute("aria-selected", String(j === selected)));
    q.setAttribute("aria-activedescendant", "hit-" + selected);
    const li = hitsList.children[selected];
    if (li) li.scrollIntoView({ block: "nearest" });
    showHitLink();
  }

  function openHit(i) {
    const h = hits[i];
    if (!h) return;
    if (h.guide_id) {
      window.open("/guides/" + encodeURIComponent(h.guide_id), "_blank", "noopener");
    } else {
      const full = hitsList.children[i].querySelector(".fulltext");
      full.hidden = !full.hidden;  // a clause opens in place: its full text
    }
  }

  async function runSearch(text) {
    if (searchCtl) searchCtl.abort();
    searchCtl = new AbortController();
    status.textContent = "正在查询…";
    try {
      const data = await api("GET", "/api/search?k=8&q=" + encodeURIComponent(text), undefined, searchCtl.signal);
      if (text !== q.value.trim()) return;  // typed on meanwhile
      hits = data.hits;
      selected = hits.length ? 0 : -1;
      renderHits();
      status.textContent = hits.length ? "找到 " + hits.length + " 条结果" : "没有找到相关的指南或条款";
    } catch (e) {
      if (e.name !== "AbortError") status.textContent = "查询失败：" + e.message;
    }
  }

  async function runAnswer(text) {
    if (answerCtl) answerCtl.abort();
    answerCtl = new AbortController();
    try {
      const a = await api("POST", "/api/answer", { question: text }, answerCtl.signal);
      if (text !== q.value.trim()) return;
      answerText.textContent = a.text;
      copyBtn.disabled = false;
      copied.textContent = "";
      const guide = (a.sources || []).find((s) => s.type === "guide");
      guideLink.hidden = !guide;
      if (guide) {
        guideLink.href = "/guides/" + encodeURIComponent(guide.id);
        guideLink.textContent = "查看完整办事指南《" + guide.title + "》";
      }
      if (text !== lastQuery && text.length >= 2) {
        lastQuery = text;
        api("POST", "/api/agent/recent", { q: text }).then(renderRecent).catch(() => {});
      }
    } catch (e) {
      if (e.name !== "AbortError") answerText.textContent = "暂时无法生成答复：" + e.message;
    }
  }

  function onInput() {
    clearTimeout(searchTimer);
    clearTimeout(answerTimer);
    const text = q.value.trim();
    if (!text) {
      hits = []; selected = -1; renderHits(); status.textContent = "";
      return;
    }
    searchTimer = setTimeout(() => runSearch(text), SEARCH_DELAY);
    answerTimer = setTimeout(() => runAnswer(text), ANSWER_DELAY);
  }

  async function copyAnswer() {
    if (copyBtn.disabled) return;
    const text = answerText.textContent;
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {  // no clipboard permission: select the text and use the legacy command
      const range = document.createRange();
      range.selectNodeContents(answerText);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      if (!document.execCommand("copy")) { copied.textContent = "复制失败，请手动选中复制"; return; }
    }
    copied.textContent = "已复制";
  }

  function renderRecent(items) {
    const ul = $("recent");
    ul.replaceChildren();
    (items || []).forEach((t) => {
      const li = el("li");
      const b = el("button", "link", t);
      b.type = "button";
      b.addEventListener("click", () => { q.value = t; q.focus(); onInput(); });
      li.appendChild(b);
      ul.appendChild(li);
    });
    if (!items || !items.length) ul.appendChild(el("li", "empty", "暂无"));
  }

  q.addEventListener("input", onInput);
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (selected >= 0 && hits.length) openHit(selected);
  });
  copyBtn.addEventListener("click", copyAnswer);

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const typing = ev.target.matches("input, textarea, select");
    const inSearch = ev.target === q;
    if (ev.key === "/" && !typing) { ev.preventDefault(); q.focus(); q.select(); return; }
    if (ev.key === "ArrowDown" && (inSearch || !typing)) { ev.preventDefault(); select(selected + 1); return; }
    if (ev.key === "ArrowUp" && (inSearch || !typing)) { ev.preventDefault(); select(selected - 1); return; }
    if (typing) return;  // letters typed into a field are text, not shortcuts
    if (ev.key === "j" || ev.key === "J") { select(selected + 1); }
    else if (ev.key === "k" || ev.key === "K") { select(selected - 1); }
    else if (ev.key === "Enter" && (ev.target === document.body || ev.target.closest("#hits")) && selected >= 0) { openHit(selected); }
    else if (ev.key === "c" || ev.key === "C") { copyAnswer(); }
  });

  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/api/auth/logout"); } finally { location.href = "/login"; }
  });

  api("GET", "/api/agent/recent").then(renderRecent).catch(() => renderRecent([]));

  // ------------------------------------------------------------------ hand-overs
  const queueList = $("queue"), queueStatus = $("queue-status"), badge = $("queue-badge");
  const conv = $("conversation"), convMsgs = $("conv-messages"), convError = $("conv-error");
  const takeBtn = $("take"), replyForm = $("reply-form"), closeForm = $("close-form");
  const myId = Number($("agent-name").dataset.agentId);
  let queue = [], known = null, openId = null, openLast = -1, openStatus = null, audio = null;

  function beep() {
    if (!$("sound").checked) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.25);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.25);
    } catch (e) { /* no audio device: the title badge still shows it */ }
  }

  function waitingSince(h) {
    return (Date.now() - Date.parse(h.created_at)) / 1000;
  }

  function renderQueue() {
    const waiting = queue.filter((h) => h.status === "waiting");
    badge.hidden = !waiting.length;
    badge.textContent = waiting.length + " 条等待";
    document.title = (waiting.length ? "(" + waiting.length + ") " : "") + BASE_TITLE;
    queueList.replaceChildren();
    if (!queue.length) queueList.appendChild(el("li", "empty", "暂无转人工会话"));
    queue.forEach((h) => {
      const li = el("li", "qitem" + (h.id === openId ? " open" : "") + (h.status === "taken" ? " mine" : ""));
      const b = el("button", "qbutton");
      b.type = "button";
      b.dataset.id = String(h.id);
      b.appendChild(el("span", "qreason", h.reason));
      b.appendChild(el("span", "qmatter", h.matter_name || h.matter || "未识别事项"));
      b.appendChild(el("span", "qstate", h.status === "taken" ? "我已接入" : "等待中"));
      const t = el("span", "qwait", "已等待 " + duration(waitingSince(h)));
      t.dataset.since = h.created_at;
      b.appendChild(t);
      const firstQ = ((h.summary && h.summary.turns) || []).filter((x) => x.who === "user").map((x) => x.text);
      if (firstQ.length) b.appendChild(el("span", "qsummary", "市民问：" + firstQ.slice(-3).join(" / ")));
      b.addEventListener("click", () => openConversation(h.id));
      li.appendChild(b);
      queueList.appendChild(li);
    });
  }

  setInterval(() => {
    document.querySelectorAll(".qwait").forEach((n) => {
      n.textContent = "已等待 " + duration((Date.now() - Date.parse(n.dataset.since)) / 1000);
    });
  }, 1000);

  function onQueue(list) {
    const ids = new Set(list.filter((h) => h.status === "waiting").map((h) => h.id));
    const fresh = known === null ? [] : [...ids].filter((id) => !known.has(id));
    known = ids;
    queue = list;
    renderQueue();
    queueStatus.textContent = fresh.length ? "有新的转人工会话（" + fresh.length + "）" : "队列已实时更新";
    if (fresh.length) beep();
    if (openId !== null) {
      const h = list.find((x) => x.id === openId);
      // Grown, or gone from my queue (another agent took it, or it closed): show its new state.
      if (h ? h.last_message_id !== openLast || h.status !== openStatus : openStatus !== "closed") {
        openConversation(openId, true);
      }
    }
  }

  const WHO = { citizen: "市民", bot: "机器人", agent: "坐席" };

  function renderConversation(c) {
    conv.hidden = false;
    $("conv-h").textContent = "会话 #" + c.id + " · " + c.reason;
    const state = c.status === "waiting" ? "等待接入" : c.status === "taken" ? "已由 " + (c.agent || "坐席") + " 接入" : "已结束";
    $("conv-meta").textContent = "事项：" + (c.matter_name || c.matter || "未识别") + " · 状态：" + state +
      (c.outcome ? " · 处理结果：" + c.outcome : "");
    convMsgs.replaceChildren();
    c.messages.forEach((m) => {
      const li = el("li", "msg msg-" + m.who);
      li.appendChild(el("span", "msg-who", m.who === "agent" && m.author ? "坐席 " + m.author : WHO[m.who] || m.who));
      li.appendChild(el("span", "msg-text", m.text));
      convMsgs.appendChild(li);
    });
    convMsgs.scrollTop = convMsgs.scrollHeight;  // the newest message in view
    const mine = c.status === "taken" && c.agent_id === myId;
    takeBtn.hidden = c.status !== "waiting";
    replyForm.hidden = !mine;
    closeForm.hidden = !mine;
    openLast = c.last_message_id;
    openStatus = c.status;
  }

  async function openConversation(id, quiet) {
    openId = id;
    if (!quiet) convError.textContent = "";
    try {
      renderConversation(await api("GET", "/api/handoffs/" + id));
      if (!quiet) { renderQueue(); $("conv-h").focus(); }
    } catch (e) {
      convError.textContent = e.message;
    }
  }

  takeBtn.addEventListener("click", async () => {
    convError.textContent = "";
    try {
      renderConversation(await api("POST", "/api/handoffs/" + openId + "/take"));
      $("reply").focus();
    } catch (e) {
      convError.textContent = e.message;
      openConversation(openId, true);
    }
  });

  replyForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = $("reply"), text = box.value.trim();
    if (!text) { convError.textContent = "请输入要发送的内容"; return; }
    convError.textContent = "";
    try {
      await api("POST", "/api/handoffs/" + openId + "/messages", { text });
      box.value = "";
      openConversation(openId, true);
    } catch (e) {
      convError.textContent = e.message;
      openConversation(openId, true);
    }
  });

  closeForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    convError.textContent = "";
    try {
      renderConversation(await api("POST", "/api/handoffs/" + openId + "/close", { outcome: $("outcome").value }));
    } catch (e) {
      convError.textContent = e.message;
    }
  });

  function connect() {
    const es = new EventSource("/api/handoffs/stream");
    es.addEventListener("queue", (ev) => onQueue(JSON.parse(ev.data)));
    es.onerror = () => { queueStatus.textContent = "队列连接中断，正在重连…"; };
  }
  connect();
})();
