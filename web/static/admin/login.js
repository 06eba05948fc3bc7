// Staff login: posts JSON to /api/auth/login, then goes to the page that asked for it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = document.getElementById("login-error");
    err.textContent = "";
    try {
      const r = await fetch("/api/auth/login", {
        method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
        body: JSON.stringify({username: form.username.value, password: form.password.value}),
      });
      if (r.ok) { location.assign(form.dataset.next || "/admin"); return; }
      const body = await r.json().catch(() => ({}));
      err.textContent = typeof body.detail === "string" ? body.detail : "登录失败，请重试";
    } catch (e) {
      err.textContent = "网络错误，请稍后重试";
    }
  });
});
