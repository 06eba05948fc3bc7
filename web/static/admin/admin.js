// Admin pages: the only script (no inline code, CSP script-src 'self').
// - guide form: "添加一项" clones the blank last row of a table of rows
// - index page: start / follow / cancel a candidate build
// - build page: reload while the build runs
"use strict";

const PHASES = {index: "正在编码段落", check: "正在用黄金问题对比回答", export: "正在导出知识库",
                done: "构建完成", failed: "构建失败", cancelled: "已取消", running: "构建中"};

function addRow(button) {
  const table = document.querySelector(`table[data-rows="${button.dataset.table}"] tbody`);
  const last = table.lastElementChild;
  const n = table.children.length;
  const row = last.cloneNode(true);
  row.querySelectorAll("input, select").forEach((el) => {
    el.name = el.name.replace(/-(\d+)-/, `-${n}-`);
    if (el.type === "checkbox") el.checked = false; else if (el.tagName === "INPUT") el.value = "";
    if (el.hasAttribute("aria-label")) el.setAttribute("aria-label", el.getAttribute("aria-label").replace(/\d+/, n + 1));
  });
  table.appendChild(row);
  row.querySelector("input").focus();
}

async function api(method, url, body) {
  const r = await fetch(url, {method, credentials: "same-origin",
    headers: body ? {"Content-Type": "application/json"} : {}, body: body ? JSON.stringify(body) : undefined});
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(typeof data.detail === "string" ? data.detail : `请求失败（${r.status}）`);
  return data;
}

function followBuild(id) {
  const box = document.getElementById("build-progress");
  const bar = document.getElementById("progress-bar");
  const label = document.getElementById("progress-label");
  const status = document.getElementById("build-status");
  const start = document.getElementById("start-build");
  const cancel = document.getElementById("cancel-build");
  box.hidden = false; cancel.hidden = false; start.disabled = true; cancel.dataset.build = id;
  const tick = async () => {
    let s;
    try { s = await api("GET", `/api/admin/index/builds/${id}`); } catch (e) { status.textContent = e.message; setTimeout(tick, 2000); return; }
    const pct = s.total ? Math.round(100 * s.done / s.total) : 0;
    bar.value = pct;
    label.textContent = `${PHASES[s.phase] || s.phase}${s.total ? `：${s.done}/${s.total}` : "…"}`;
    if (s.status === "running") { setTimeout(tick, 1000); return; }
    cancel.hidden = true; start.disabled = false;
    if (s.status === "done") {
      bar.value = 100;
      const sum = s.summary || {};
      status.innerHTML = "";
      const a = document.createElement("a");
      a.href = `/admin/index/builds/${id}`; a.id = "open-report";
      a.textContent = `构建完成：回答有变化 ${sum.changed} 个，变差 ${sum.worse} 个 —— 查看对比并发布`;
      status.appendChild(a);
    } else {
      status.textContent = `${PHASES[s.status]}${s.error ? "：" + s.error : ""}`;
    }
  };
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button.add-row").forEach((b) => b.addEventListener("click", () => addRow(b)));

  const build = document.getElementById("build");
  if (build) {
    const status = document.getElementById("build-status");
    document.getElementById("start-build").addEventListener("click", async () => {
      status.textContent = "";
      try {
        const r = await api("POST", "/api/admin/index/builds", {labelled: document.getElementById("labelled").checked});
        followBuild(r.id);
      } catch (e) { status.textContent = e.message; }
    });
    document.getElementById("cancel-build").addEventListener("click", async (ev) => {
      try { await api("POST", `/api/admin/index/builds/${ev.target.dataset.build}/cancel`); }
      catch (e) { status.textContent = e.message; }
    });
    if (build.dataset.running) followBuild(build.dataset.running);
  }

  const state = document.getElementById("build-state");
  if (state && state.dataset.status === "running") {
    const poll = async () => {
      const s = await api("GET", `/api/admin/index/builds/${state.dataset.build}`).catch(() => null);
      if (s && s.status !== "running") location.reload(); else setTimeout(poll, 2000);
    };
    setTimeout(poll, 2000);
  }
});
