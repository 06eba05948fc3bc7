// Staff login: POST /api/auth/login, then to ?next= (same-site paths only); first login sets a password.
(function () {
  "use strict";
  const params = new URLSearchParams(location.search);
  // Only local paths, checked by the server (web/auth.py safe_next): never another site after logging in.
  const next = document.body.dataset.next || null;
  const loginForm = document.getElementById("login-form");
  const pwForm = document.getElementById("password-form");
  const message = document.getElementById("message");

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle("error", Boolean(isError));
  }

  function landing(user) {
    if (next) return next;
    return user.role === "admin" ? "/admin" : "/agent";
  }

  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return { ok: r.ok, status: r.status, data };
  }

  function errorText(res) {
    if (res.data && typeof res.data.detail === "string") return res.data.detail;
    return "暂时无法登录（" + res.status + "），请稍后再试";
  }

  if (params.get("why") === "role") say("您的账号没有访问该页面的权限，请换一个账号登录。", true);

  function askNewPassword(oldPassword) {
    loginForm.hidden = true;
    pwForm.hidden = false;
    document.getElementById("old-password").value = oldPassword || "";
    document.getElementById("new-password").focus();
    say("登录成功，请先设置新密码。", false);
  }

  loginForm.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const username = document.getElementById("username").value.trim();
    const password = document.getElementById("password").value;
    if (!username || !password) { say("请输入用户名和密码", true); return; }
    const button = loginForm.querySelector("button");
    button.disabled = true;
    say("正在登录…", false);
    try {
      const res = await post("/api/auth/login", { username, password });
      if (!res.ok) { say(errorText(res), true); return; }
      if (res.data.must_change_password) { askNewPassword(password); return; }
      say("登录成功，正在进入…", false);
      location.assign(landing(res.data));
    } catch (e) {
      say("网络异常，请检查网络后重试", true);
    } finally {
      button.disabled = false;
    }
  });

  pwForm.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const oldPassword = document.getElementById("old-password").value;
    const p1 = document.getElementById("new-password").value;
    const p2 = document.getElementById("new-password2").value;
    if (p1.length < 10) { say("新密码至少需要10个字符", true); return; }
    if (p1 !== p2) { say("两次输入的新密码不一致", true); return; }
    const res = await post("/api/auth/password", { old_password: oldPassword, new_password: p1 });
    if (!res.ok) { say(errorText(res), true); return; }
    say("新密码已保存，正在进入…", false);
    location.assign(landing(res.data));
  });

  // Already logged in but the one-time password is still unchanged (redirected here by a page).
  fetch("/api/auth/me", { credentials: "same-origin" }).then(function (r) {
    return r.ok ? r.json() : null;
  }).then(function (user) {
    if (user && user.must_change_password) askNewPassword("");
  }).catch(function () {});
})();
