"""Admins: the /admin pages (knowledge with history, candidate index, feedback and gaps, overview)
and their JSON API under /api/admin.

`router` keeps the older token-protected index endpoints (automation, `X-Admin-Token`);
`api` and `pages` need a logged-in admin (AdminDep / staff_page("admin")). Every change is audited
in the same transaction (assistant.audit.record). Pages are server-rendered; the only script is
web/static/admin/admin.js (no inline code: the pages work under CSP script-src 'self').
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import typing
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant import insights, publishing
from assistant import spreadsheets as sp
from assistant import knowledge_base as kb
from assistant.db import GoldenQuestion, IndexBuild, StaffUser, sessions
from embeddings import index as idx
from assistant import audit
from knowledge import schema
from knowledge.grounding import article_url, check_guide
from web import charts
from web.deps import MAX_ID, AdminDep, EngineDep, PathId, QueryId, SessionDep, SettingsDep, current_admin, staff_page

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(current_admin)])
api = APIRouter(prefix="/api/admin", tags=["admin"])
pages = APIRouter(prefix="/admin", include_in_schema=False)
AdminPage = typing.Annotated[StaffUser, Depends(staff_page("admin"))]


# ---------- token API for automation (unchanged) ----------
class ActivateRequest(BaseModel):
    version: str = Field(min_length=2, max_length=80, pattern=r"^v[\w\-]+$")


@router.get("/versions")
def versions(settings: SettingsDep):
    return {"current": idx.current_version(settings.index_dir), "versions": idx.list_versions(settings.index_dir)}


@router.post("/activate", summary="Roll back or forward to a built version, without downtime")
def activate(req: ActivateRequest, request: Request, settings: SettingsDep,
             eng: EngineDep, user: AdminDep):
    before = idx.current_version(settings.index_dir)
    try:
        eng.reload(req.version)  # load first: a broken version never becomes CURRENT
        idx.set_current(settings.index_dir, req.version)
    except FileNotFoundError:
        raise HTTPException(404, f"没有这个索引版本: {req.version}")
    except idx.IncompatibleIndex as exc:
        raise HTTPException(409, f"该索引版本由其他编码模型生成，不能启用（{exc}）")
    with sessions(settings.database_url)() as s:
        audit.record(s, user.username, "index.activate", f"index:{req.version}", {"from": before})
        s.commit()
    return {"current": req.version}


@router.post("/reload", summary="Load the CURRENT version now")
def reload(eng: EngineDep):
    try:
        return {"current": eng.reload()}
    except idx.IncompatibleIndex as exc:
        raise HTTPException(409, f"当前索引由其他编码模型生成，仍使用原索引（{exc}）")


# ---------- shared helpers ----------
def _ensure_seeded(session) -> None:
    """A fresh database starts from the repository's knowledge folder (the seed of a fresh machine)."""
    if not kb.current_all(session):
        kb.import_folder(session, kb_root(), "system", "从仓库 knowledge/ 初始导入")
        session.commit()


def kb_root() -> Path:
    return Path(__file__).resolve().parent.parent / "knowledge"


def _engine_or_none(request: Request):
    return getattr(request.app.state, "engine", None)


def _db(settings):
    return sessions(settings.database_url)


def render(request: Request, name: str, user: StaffUser, status_code: int = 200, **ctx):
    return templates.TemplateResponse(request, f"admin/{name}", {"user": user, "nav": name.split(".")[0], **ctx},
                                      status_code=status_code)


# ---------- guide form ↔ guide dict ----------
MATERIAL_FIELDS = ("name", "form", "copies", "condition", "notes")
MATERIAL_FLAGS = ("waivable", "e_license")
LOCATION_FIELDS = ("name", "district", "address", "hours", "phone")
SOURCE_FIELDS = ("key", "title", "doc_number", "issued", "seen", "url", "notes")
PROVENANCE_FIELDS = ("fact", "source", "clause", "reviewed", "check")
LINE_FIELDS = ("aliases", "questions", "conditions", "steps", "legal_basis")
TEXT_FIELDS = ("name", "category", "summary", "department", "applicants", "time_notes", "fee", "scope", "scope_notes",
               "phone", "region", "matter_type", "complaint_phone")


def choices(field_name: str, model=schema.Guide) -> list[str]:
    """Allowed values of a Literal field, read from the schema so schema changes show up in the form."""
    ann = model.model_fields[field_name].annotation
    for arg in [ann, *typing.get_args(ann)]:
        for inner in [arg, *typing.get_args(arg)]:
            if typing.get_origin(inner) is typing.Literal:
                return list(typing.get_args(inner))
    return []


def _opt(value: str | None):
    value = (value or "").strip()
    return value or None


def _number(value: str | None):
    """'' → None, digits → int, anything else as typed (knowledge validation reports it in Chinese)."""
    value = (value or "").strip()
    if not value:
        return None
    return int(value) if value.isdigit() else value


def _rows(form, prefix: str, fields: tuple, base: list, flags: tuple = ()) -> list[dict]:
    """Rows `prefix-<i>-<field>` merged onto the previous rows (fields the form lacks are kept)."""
    idxs = sorted({int(k.split("-")[1]) for k in form.keys() if k.startswith(prefix + "-") and k.split("-")[1].isdigit()})
    if not idxs:  # the form did not show this table (an API client posting some fields): keep it as it was
        return list(base)
    out = []
    for i in idxs:
        row = dict(base[i]) if i < len(base) and isinstance(base[i], dict) else {}
        for f in fields:
            v = form.get(f"{prefix}-{i}-{f}")
            if v is not None:
                row[f] = _number(v) if f == "copies" else _opt(v)
        for f in flags:  # a checkbox: only written when ticked or already in the file (defaults stay implicit)
            if form.get(f"{prefix}-{i}-{f}") == "on":
                row[f] = True
            elif f in row:
                row[f] = False
        if not any(row.get(f) for f in fields[:1]) and not any(row.get(f) for f in fields[1:] if f not in ("form", "copies")):
            continue  # an empty row: the admin left the blank line or cleared it
        out.append({k: v for k, v in row.items() if v is not None and v != ""})
    return out


def _keyed(form, prefix: str, fields: tuple, base: dict) -> dict:
    """A mapping edited as rows whose first field is the key (sources by their key, provenance by
    fact path); dates typed as YYYY-MM-DD. Without such rows in the form the mapping stays as it was."""
    rows = _rows(form, prefix, fields, [{fields[0]: k, **v} for k, v in base.items()])
    out = {}
    for row in rows:
        key = row.pop(fields[0], None)
        if not key:
            continue  # a row without its key cannot be saved; validation of the rest still runs
        for f in ("issued", "seen", "reviewed"):
            if isinstance(row.get(f), str):
                try:
                    row[f] = dt.date.fromisoformat(row[f])
                except ValueError:
                    pass  # validation names it next to the field
        out[key] = row
    return out


def guide_from_form(form, base: dict) -> dict:
    data = dict(base)
    for f in TEXT_FIELDS:
        if f in form:
            data[f] = _opt(form.get(f))
    for f in LINE_FIELDS:
        if f in form:
            data[f] = [line.strip() for line in form.get(f, "").splitlines() if line.strip()]
    for f in ("legal_limit", "promised_limit", "trips"):
        if f in form:
            v = _number(form.get(f))
            data[f] = v
    if "channels-present" in form:
        data["channels"] = form.getlist("channels")
    data["materials"] = _rows(form, "materials", MATERIAL_FIELDS, base.get("materials") or [], MATERIAL_FLAGS)
    data["locations"] = _rows(form, "locations", LOCATION_FIELDS, base.get("locations") or [])
    data["sources"] = _keyed(form, "sources", SOURCE_FIELDS, base.get("sources") or {})
    data["provenance"] = _keyed(form, "provenance", PROVENANCE_FIELDS, base.get("provenance") or {})
    if "appointment-present" in form:
        ch = [x.strip() for x in form.get("appointment-channels", "").replace("，", "、").replace(",", "、").split("、") if x.strip()]
        notes, required = _opt(form.get("appointment-notes")), form.get("appointment-required") == "on"
        appt = dict(base.get("appointment") or {})
        # Write a key when it was in the file or differs from the schema default (keeps diffs to real edits).
        for key, value, default in (("channels", ch, []), ("required", required, False),
                                    ("walk_in", form.get("appointment-walk_in") == "on", True), ("notes", notes, None)):
            if key in appt or value != default:
                appt[key] = value
        if appt.get("notes", "") is None:
            appt.pop("notes")
        data["appointment"] = appt if appt or base.get("appointment") is not None else None
    # Keep the file tidy: optional fields left empty are dropped rather than written as null.
    for k in [k for k, v in data.items() if v is None and k not in base]:
        data.pop(k)
    return data


def _errors(problems) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in problems:
        key = kb.problem_field(p) or ("reason" if p.field == "修改说明" else "")
        detail = p.field.split(" > ", 1)[1] + "：" if " > " in p.field else ""
        out.setdefault(key, []).append(detail + p.message)
    return out


def _guide_context(data: dict) -> dict:
    return {"data": data, "form_choices": choices("form", schema.Material), "channel_choices": choices("channels"),
            "scope_choices": choices("scope"), "region_choices": choices("region"),
            "labels": schema.FIELD_LABELS, "grounding": _grounding(data)}


def _grounding(data: dict) -> dict[str, list]:
    """Provenance key → the grounding of the facts it covers (status, detail, article links); empty
    while the form does not validate (its errors are shown instead)."""
    try:
        g = schema.Guide.model_validate(data)
    except ValueError:
        return {}
    out: dict[str, list] = {}
    for f in check_guide(g):
        key = f.path if f.path in g.provenance else f.path.split(".")[0]
        if key in g.provenance:
            out.setdefault(key, []).append({"path": f.path, "status": f.status, "label": f.label, "detail": f.detail,
                                            "articles": [(a, article_url(f.held, a)) for a in f.articles]})
    return out


# ---------- pages: overview ----------
@pages.get("")
def overview_page(request: Request, user: AdminPage, session: SessionDep, settings: SettingsDep, days: int = 30):
    days = max(7, min(days, 365))
    _ensure_seeded(session)
    reviews = kb.review_counts(session, settings.fact_review_max_age_days)
    o = insights.overview(session, days)
    names = insights.matter_names(session)
    kinds = [("answered", "已回答"), ("refused", "未能回答"), ("handoff", "转人工"), ("other", "其他（寒暄、预约等）")]
    total_votes = o["votes"]["up"] + o["votes"]["down"]
    return render(request, "overview.html", user, o=o, days=days, reviews=reviews,
                  per_day=charts.columns([(d.strftime("%m-%d"), n) for d, n in o["days"]], f"近{days}天每日提问数"),
                  outcomes=charts.bars([(label, o["outcomes"][k]) for k, label in kinds], "回答结果",
                                       colors=charts.PALETTE, keys=[k for k, _ in kinds]),
                  matters=charts.bars([(names.get(m, m), n) for m, n in o["matters"]], "热门事项") if o["matters"] else None,
                  votes=charts.bars([("👍 有用", o["votes"]["up"]), ("👎 没用", o["votes"]["down"])], "评价",
                                    colors=charts.PALETTE, keys=["up", "down"]),
                  up_share=round(100 * o["votes"]["up"] / total_votes) if total_votes else None,
                  waits=charts.histogram(o["waits"], [0, 1, 5, 15, 60], "转人工等待时间"),
                  median_wait=sorted(o["waits"])[len(o["waits"]) // 2] if o["waits"] else None)


# ---------- pages: guides ----------
MAX_MONTHS = 1200  # "reviewed more than N months ago": beyond a century the date arithmetic overflows


def _months(value: str) -> int | None:
    """The filter as typed; anything but plain ASCII digits in range (²、abc、30000) shows every guide."""
    return int(value) if value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_MONTHS else None


@pages.get("/guides")
def guides_page(request: Request, user: AdminPage, session: SessionDep, settings: SettingsDep, older_than: str = "",
                review: str = "", sort: str = "", msg: str = ""):
    _ensure_seeded(session)
    months = _months(older_than)
    review = review if review in kb.REVIEW_FILTERS else ""
    sort = "review" if sort == "review" else ""
    rows = kb.guide_rows(session, months, max_age_days=settings.fact_review_max_age_days, review=review, sort=sort)
    return render(request, "guides.html", user, rows=rows, older_than=months or "", review=review, sort=sort,
                  review_filters=kb.REVIEW_FILTERS, max_age_days=settings.fact_review_max_age_days, msg=msg)


# ---------- pages: guides as spreadsheets (import with a dry run, export, template) ----------
IMPORT_PAGE_ROWS = 100  # rows of the dry run per page (a city's file has thousands)


def _sheet_response(data: bytes, name: str, fmt: str) -> Response:
    media = sp.XLSX_TYPE if fmt == "xlsx" else "text/csv; charset=utf-8"
    return Response(data, media_type=media, headers={"Content-Disposition": f"attachment; filename={name}.{fmt}"})


@pages.get("/guides/template.xlsx")
def guides_template(user: AdminPage):
    return _sheet_response(sp.template_xlsx(), "guide-template", "xlsx")


@pages.get("/guides/export.{fmt}")
def guides_export(fmt: str, user: AdminPage, session: SessionDep):
    if fmt not in ("xlsx", "csv"):
        raise HTTPException(404, "只能导出 .xlsx 或 .csv")
    _ensure_seeded(session)
    return _sheet_response(sp.export(session, fmt), f"guides-{dt.date.today().isoformat()}", fmt)


@pages.get("/guides/import")
def import_page(request: Request, user: AdminPage, settings: SettingsDep):
    return render(request, "guides_import.html", user, run=None, errors=[], limit_mb=settings.max_import_mb)


def _import_view(request, user, session, settings, token: str, entry: dict, page: int = 1, status_code: int = 200,
                 error: str = ""):
    _ensure_seeded(session)
    sheets = sp.read(entry["filename"], entry["data"], settings.max_import_mb * 1024 * 1024, settings.max_import_rows)
    run = sp.dry_run(session, sheets, entry.get("mapping"))
    session.rollback()  # a dry run: nothing of it stays
    shown = [r for r in run.rows if r.status != "unchanged"]
    shown.sort(key=lambda r: (r.status != "error", r.row))
    pages_n = max(1, -(-len(shown) // IMPORT_PAGE_ROWS))
    page = max(1, min(page, pages_n))
    return render(request, "guides_import.html", user, status_code=status_code, run=run, token=token, errors=[error] if error else [],
                  rows=shown[(page - 1) * IMPORT_PAGE_ROWS:page * IMPORT_PAGE_ROWS], page=page, pages_n=pages_n,
                  choices=sp.field_choices(), letters=[sp.column_letter(i) for i in range(len(run.headers))],
                  limit_mb=settings.max_import_mb)


@pages.post("/guides/import")
async def import_upload(request: Request, user: AdminPage, session: SessionDep, settings: SettingsDep):
    _ensure_seeded(session)  # a fresh database starts from the repository's guides, then the file changes them
    form = await request.form()
    upload = form.get("file")
    try:
        if upload is None or not getattr(upload, "filename", ""):
            raise sp.BadFile("请选择要导入的表格文件（.xlsx 或 .csv）")
        data = await upload.read(settings.max_import_mb * 1024 * 1024 + 1)
        # Parsing thousands of rows takes seconds: off the event loop, so chat requests keep flowing.
        await run_in_threadpool(sp.read, upload.filename, data, settings.max_import_mb * 1024 * 1024,
                                settings.max_import_rows)
    except sp.BadFile as exc:
        return render(request, "guides_import.html", user, status_code=422, run=None, errors=[str(exc)],
                      limit_mb=settings.max_import_mb)
    store = publishing._store(settings)
    token = sp.stash(store, Path(upload.filename).name, data, user.username)
    return RedirectResponse(f"/admin/guides/import/{token}", status_code=303)


def _stashed(settings, token: str, user) -> dict:
    entry = sp.unstash(publishing._store(settings), token, user.username)
    if entry is None:
        raise HTTPException(404, "这次上传已过期或不存在，请重新上传文件")
    return entry


@pages.get("/guides/import/{token}")
def import_dry_run(request: Request, token: str, user: AdminPage, session: SessionDep, settings: SettingsDep,
                   page: int = 1):
    return _import_view(request, user, session, settings, token, _stashed(settings, token, user), page)


@pages.post("/guides/import/{token}")
async def import_mapping(request: Request, token: str, user: AdminPage, session: SessionDep, settings: SettingsDep):
    entry = _stashed(settings, token, user)
    form = await request.form()
    n = len((await run_in_threadpool(sp.read, entry["filename"], entry["data"], settings.max_import_mb * 1024 * 1024,
                                     settings.max_import_rows)).main.headers)
    mapping = [form.get(f"map-{i}") or sp.IGNORE for i in range(n)]
    sp.remember_mapping(publishing._store(settings), token, entry, mapping)
    return RedirectResponse(f"/admin/guides/import/{token}", status_code=303)


@pages.post("/guides/import/{token}/confirm")
async def import_confirm(request: Request, token: str, user: AdminPage, session: SessionDep, settings: SettingsDep):
    entry = _stashed(settings, token, user)
    _ensure_seeded(session)
    sheets = await run_in_threadpool(sp.read, entry["filename"], entry["data"], settings.max_import_mb * 1024 * 1024,
                                     settings.max_import_rows)
    try:
        result = await run_in_threadpool(sp.apply, session, sheets, entry.get("mapping"), user.username)
    except sp.NotImported as exc:
        session.rollback()
        return await run_in_threadpool(_import_view, request, user, session, settings, token, entry, 1, 422, str(exc))
    session.commit()
    sp.forget(publishing._store(settings), token)
    done = (f"已导入《{entry['filename']}》：新建 {result['new']} 篇，修改 {result['changed']} 篇，"
            f"未变 {result['unchanged']} 篇。构建并发布索引后生效。")
    return RedirectResponse(f"/admin/guides?msg={_q(done)}", status_code=303)


@pages.get("/guides/new")
def new_guide_page(request: Request, user: AdminPage):
    return render(request, "guide_new.html", user, errors={}, values={})


@pages.post("/guides/new")
async def new_guide(request: Request, user: AdminPage, session: SessionDep):
    form = await request.form()
    gid, name = (form.get("id") or "").strip(), (form.get("name") or "").strip()
    errors = {}
    if kb.current(session, kb.GUIDE, gid):
        errors["id"] = ["已有这个编号的指南"]
    else:
        try:
            kb.save(session, kb.GUIDE, gid, kb.new_guide_template(gid, name), user.username, "按模板新建指南",
                    action="create")
            session.commit()
            return RedirectResponse(f"/admin/guides/{gid}", status_code=303)
        except kb.InvalidKnowledge as exc:
            session.rollback()
            errors = _errors(exc.problems)
    return render(request, "guide_new.html", user, status_code=422, errors=errors, values={"id": gid, "name": name})


def _guide_or_404(session, gid: str):
    _ensure_seeded(session)
    rev = kb.current(session, kb.GUIDE, gid)
    if rev is None or rev.deleted:
        raise HTTPException(404, "没有这篇指南")
    return rev


@pages.get("/guides/{gid}")
def guide_page(request: Request, gid: str, user: AdminPage, session: SessionDep, saved: int | None = None):
    rev = _guide_or_404(session, gid)
    return render(request, "guide_edit.html", user, gid=gid, rev=rev, history=kb.history(session, kb.GUIDE, gid),
                  errors={}, saved=saved, reason="", **_guide_context(kb.guide_data(rev)))


@pages.post("/guides/{gid}")
async def save_guide(request: Request, gid: str, user: AdminPage, session: SessionDep):
    rev = _guide_or_404(session, gid)
    form = await request.form()
    data = guide_from_form(form, kb.guide_data(rev))
    reason = (form.get("reason") or "").strip()
    try:
        saved = kb.save(session, kb.GUIDE, gid, kb.guide_yaml(data, rev.content), user.username, reason)
        session.commit()
        return RedirectResponse(f"/admin/guides/{gid}?saved={saved.revision.number}", status_code=303)
    except kb.InvalidKnowledge as exc:
        session.rollback()
        return render(request, "guide_edit.html", user, status_code=422, gid=gid, rev=rev,
                      history=kb.history(session, kb.GUIDE, gid), errors=_errors(exc.problems), saved=None,
                      reason=reason, **_guide_context(data))


@pages.get("/guides/{gid}/diff")
def guide_diff_page(request: Request, gid: str, user: AdminPage, session: SessionDep, a: QueryId, b: QueryId):
    ra, rb = kb.revision(session, kb.GUIDE, gid, a), kb.revision(session, kb.GUIDE, gid, b)
    if ra is None or rb is None:
        raise HTTPException(404, "没有这个版本")
    return render(request, "diff.html", user, gid=gid, a=ra, b=rb, d=kb.diff(ra, rb))


@pages.post("/guides/{gid}/restore")
async def restore_guide(request: Request, gid: str, user: AdminPage, session: SessionDep):
    form = await request.form()
    number = int(form.get("number")) if str(form.get("number") or "").isdigit() else 0
    try:
        saved = kb.restore(session, kb.GUIDE, gid, number, user.username, form.get("reason") or "")
    except LookupError as exc:
        raise HTTPException(404, str(exc))
    session.commit()
    return RedirectResponse(f"/admin/guides/{gid}?saved={saved.revision.number}", status_code=303)


# ---------- pages: index ----------
@pages.get("/index")
def index_page(request: Request, user: AdminPage, session: SessionDep, settings: SettingsDep, msg: str = ""):
    builds = list(session.scalars(select(IndexBuild).order_by(IndexBuild.id.desc()).limit(10)))
    running = publishing.running_build(session)
    golden = list(session.scalars(select(GoldenQuestion).where(GoldenQuestion.active.is_(True)).order_by(GoldenQuestion.id.desc())))
    return render(request, "index.html", user, builds=builds, running=running,
                  versions=publishing.versions(session, settings), golden=golden, msg=msg,
                  golden_rows=[(g, json.loads(g.turns), json.loads(g.must)) for g in golden])


@pages.get("/index/builds/{build_id}")
def build_page(request: Request, build_id: PathId, user: AdminPage, session: SessionDep, error: str = ""):
    build = session.get(IndexBuild, build_id)
    if build is None:
        raise HTTPException(404, "没有这次构建")
    rep = publishing.report(session, build_id)
    items = sorted(rep["items"], key=lambda x: (not x["worse"], not x["changed"], x["id"])) if rep else []
    return render(request, "build.html", user, build=build, rep=rep, items=items, error=error,
                  status=publishing.status(session, build_id))


@pages.post("/index/builds/{build_id}/publish")
async def publish_page(request: Request, build_id: PathId, user: AdminPage, session: SessionDep, settings: SettingsDep):
    form = await request.form()
    try:
        # Loading the candidate takes a moment: off the event loop, so chat requests keep flowing.
        version = await run_in_threadpool(publishing.publish, session, _engine_or_none(request), settings, build_id,
                                          user.username, form.get("override_reason"))
    except (publishing.PublishRefused, LookupError, FileNotFoundError) as exc:
        session.rollback()
        return RedirectResponse(f"/admin/index/builds/{build_id}?error={_q(str(exc))}", status_code=303)
    session.commit()
    return RedirectResponse(f"/admin/index?msg={_q('已发布 ' + version)}", status_code=303)


@pages.post("/index/activate")
async def activate_page(request: Request, user: AdminPage, session: SessionDep, settings: SettingsDep):
    form = await request.form()
    version = form.get("version") or ""
    try:
        await run_in_threadpool(publishing.activate, session, _engine_or_none(request), settings, version,
                                user.username, "index.rollback", {"reason": form.get("reason") or None})
    except FileNotFoundError:
        session.rollback()
        return RedirectResponse(f"/admin/index?msg={_q('没有这个索引版本')}", status_code=303)
    session.commit()
    return RedirectResponse(f"/admin/index?msg={_q('已切换到 ' + version)}", status_code=303)


@pages.post("/golden")
async def add_golden_page(request: Request, user: AdminPage, session: SessionDep):
    form = await request.form()
    must = [[alt.strip() for alt in g.split("|") if alt.strip()]
            for g in (form.get("must") or "").replace("，", ",").split(",") if g.strip()]
    try:
        publishing.add_golden(session, form.get("question") or "", must, user.username, note=form.get("note"))
    except ValueError as exc:
        return RedirectResponse(f"{_back(form, '/admin/index')}?msg={_q(str(exc))}", status_code=303)
    session.commit()
    return RedirectResponse(f"{_back(form, '/admin/index')}?msg={_q('已加入黄金问题')}", status_code=303)


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text)


def _back(form, default: str) -> str:
    back = form.get("back") or default
    return back if back.startswith("/admin") else default


# ---------- pages: feedback and gaps ----------
def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


@pages.get("/feedback")
def feedback_page(request: Request, user: AdminPage, session: SessionDep, since: str = "", until: str = "",
                  msg: str = ""):
    _ensure_seeded(session)
    groups = insights.group(insights.gaps(session, _date(since), _date(until)))
    guides = [(r["id"], r["name"]) for r in kb.guide_rows(session)]
    return render(request, "feedback.html", user, groups=groups, since=since, until=until, guides=guides,
                  kind_labels=insights.KIND_LABELS, msg=msg)


# A cell starting with one of these is a formula to Excel and LibreOffice (=cmd|…, +…, -…, @SUM…):
# citizens write the questions, so such a cell is written as text, after an apostrophe (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def csv_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


@pages.get("/feedback.csv")
def feedback_csv(user: AdminPage, session: SessionDep, since: str = "", until: str = ""):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["group", "kind", "at", "question", "reason", "answer", "matter", "index_version"])
    for n, g in enumerate(insights.group(insights.gaps(session, _date(since), _date(until))), 1):
        for it in g.items:
            w.writerow([n, it.kind, it.at.isoformat(timespec="seconds"), *map(csv_cell, (
                it.question, it.reason or "", it.answer, it.matter or "", it.index_version or ""))])
    # BOM: Excel opens UTF-8 Chinese correctly only with it.
    return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": "attachment; filename=feedback-gaps.csv"})


@pages.post("/feedback/to-guide")
async def gap_to_guide(request: Request, user: AdminPage, session: SessionDep):
    form = await request.form()
    gid, question = form.get("guide") or "", (form.get("question") or "").strip()
    rev = kb.current(session, kb.GUIDE, gid)
    if rev is None or not question:
        return RedirectResponse(f"/admin/feedback?msg={_q('请选择指南')}", status_code=303)
    data = kb.guide_data(rev)
    if question not in (data.get("questions") or []):
        data["questions"] = [*(data.get("questions") or []), question]
        kb.save(session, kb.GUIDE, gid, kb.guide_yaml(data, rev.content), user.username,
                f"反馈中的问题加入常见问法：{question}", action="question")
        session.commit()
    done = f"已加入《{data.get('name', gid)}》的常见问法，下次构建索引生效"
    return RedirectResponse(f"/admin/feedback?msg={_q(done)}", status_code=303)


# ---------- JSON API (logged-in admins) ----------
class BuildRequest(BaseModel):
    labelled: bool = False  # also run the 322 labelled retrieval questions (slower)


class PublishRequest(BaseModel):
    override_reason: str | None = Field(default=None, max_length=500)


class RollbackRequest(BaseModel):
    version: str = Field(min_length=2, max_length=80, pattern=r"^v[\w\-]+$")
    reason: str | None = Field(default=None, max_length=500)


class RestoreRequest(BaseModel):
    number: int = Field(ge=1, le=MAX_ID)
    reason: str = Field(default="", max_length=500)


@api.get("/guides")
def api_guides(user: AdminDep, session: SessionDep,
               older_than: typing.Annotated[int | None, Query(ge=1, le=MAX_MONTHS)] = None):
    _ensure_seeded(session)
    return [{**r, "reviewed": r["reviewed"].isoformat() if r["reviewed"] else None,
             "edited_at": r["edited_at"].isoformat(timespec="seconds")} for r in kb.guide_rows(session, older_than)]


@api.get("/guides/{gid}/revisions")
def api_revisions(gid: str, user: AdminDep, session: SessionDep):
    return [{"number": r.number, "author": r.author, "reason": r.reason, "at": r.created_at.isoformat(timespec="seconds"),
             "deleted": r.deleted} for r in kb.history(session, kb.GUIDE, gid)]


@api.get("/guides/{gid}/diff")
def api_diff(gid: str, a: QueryId, b: QueryId, user: AdminDep, session: SessionDep):
    ra, rb = kb.revision(session, kb.GUIDE, gid, a), kb.revision(session, kb.GUIDE, gid, b)
    if ra is None or rb is None:
        raise HTTPException(404, "没有这个版本")
    return kb.diff(ra, rb)


@api.post("/guides/{gid}/restore")
def api_restore(gid: str, req: RestoreRequest, user: AdminDep, session: SessionDep):
    try:
        saved = kb.restore(session, kb.GUIDE, gid, req.number, user.username, req.reason)
    except LookupError as exc:
        raise HTTPException(404, str(exc))
    session.commit()
    return {"revision": saved.revision.number, "changed": saved.changed}


def _build_exists(session: Session, build_id: int) -> None:
    if session.get(IndexBuild, build_id) is None:
        raise HTTPException(404, "没有这次构建")


@api.post("/index/builds", status_code=202)
def api_build(req: BuildRequest, user: AdminDep, session: SessionDep, settings: SettingsDep):
    _ensure_seeded(session)
    try:
        build_id = publishing.start_build(_db(settings), settings, user.username, req.labelled)
    except publishing.BuildRunning as exc:
        raise HTTPException(409, str(exc))
    return {"id": build_id}


@api.get("/index/builds/{build_id}")
def api_build_status(build_id: PathId, user: AdminDep, session: SessionDep):
    st = publishing.status(session, build_id)
    if st is None:
        raise HTTPException(404, "没有这次构建")
    return st


@api.post("/index/builds/{build_id}/cancel")
def api_cancel(build_id: PathId, user: AdminDep, session: SessionDep, settings: SettingsDep):
    _build_exists(session, build_id)
    if not publishing.cancel(_db(settings), build_id, user.username):
        raise HTTPException(409, "这次构建已经结束，无法取消")
    return {"cancelled": build_id}


@api.get("/index/builds/{build_id}/report")
def api_report(build_id: PathId, user: AdminDep, session: SessionDep):
    rep = publishing.report(session, build_id)
    if rep is None:
        raise HTTPException(404, "这次构建还没有对比结果")
    return rep


@api.post("/index/builds/{build_id}/publish")
def api_publish(build_id: PathId, req: PublishRequest, request: Request, user: AdminDep, session: SessionDep,
                settings: SettingsDep):
    _build_exists(session, build_id)
    try:
        version = publishing.publish(session, _engine_or_none(request), settings, build_id, user.username,
                                     req.override_reason)
    except publishing.PublishRefused as exc:
        raise HTTPException(409, str(exc))
    except LookupError as exc:
        raise HTTPException(409, str(exc))
    session.commit()
    return {"current": version}


@api.post("/index/rollback")
def api_rollback(req: RollbackRequest, request: Request, user: AdminDep, session: SessionDep, settings: SettingsDep):
    try:
        publishing.activate(session, _engine_or_none(request), settings, req.version, user.username, "index.rollback",
                            {"reason": req.reason})
    except FileNotFoundError:
        raise HTTPException(404, f"没有这个索引版本: {req.version}")
    session.commit()
    return {"current": req.version}


@api.get("/index/versions")
def api_versions(user: AdminDep, session: SessionDep, settings: SettingsDep):
    return [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in m.items()}
            for m in publishing.versions(session, settings)]


# ---------- pages: policy documents ----------
DOC_META = (("title", "标题"), ("short_title", "简称"), ("issuer", "发文机关"), ("date", "日期（YYYY-MM-DD 或年份）"),
            ("doc_number", "文号（没有可不填）"))


def _doc_meta(form) -> dict:
    meta = {k: _opt(form.get(k)) for k, _ in DOC_META}
    meta["region"], meta["layout"] = form.get("region") or "厦门市", form.get("layout") or "clauses"
    return meta


def _documents_page(request, user, session, status_code=200, **ctx):
    docs = [(r, json.loads(r.meta or "{}")) for r in kb.current_all(session, kb.DOCUMENT)]
    return render(request, "documents.html", user, status_code=status_code, docs=docs, fields=DOC_META,
                  regions=choices("region", kb.PolicyDocument), **{"errors": [], "meta": {}, "clauses": None, **ctx})


@pages.get("/documents")
def documents_page(request: Request, user: AdminPage, session: SessionDep, msg: str = ""):
    _ensure_seeded(session)
    return _documents_page(request, user, session, msg=msg)


@pages.post("/documents/preview")
async def document_preview(request: Request, user: AdminPage, session: SessionDep):
    _ensure_seeded(session)
    form = await request.form()
    upload, meta = form.get("file"), _doc_meta(form)
    try:
        if upload is None or not getattr(upload, "filename", ""):
            raise kb.InvalidKnowledge([kb.Problem("", "文件", "请选择要上传的文件")])
        text = kb.extract_text(upload.filename, await upload.read())
        meta["file"] = kb.document_file_name(session, text)
        clauses = kb.validate_document(meta, text)
    except kb.InvalidKnowledge as exc:
        return _documents_page(request, user, session, 422, errors=[f"{p.field}：{p.message}" for p in exc.problems],
                               meta=meta)
    return _documents_page(request, user, session, meta=meta, clauses=clauses, text=text)


@pages.post("/documents")
async def document_save(request: Request, user: AdminPage, session: SessionDep):
    _ensure_seeded(session)
    form = await request.form()
    meta, text = _doc_meta(form), (form.get("text") or "").replace("\r\n", "\n")  # browsers send CRLF
    meta["file"] = kb.document_file_name(session, text)
    try:
        kb.save(session, kb.DOCUMENT, meta["file"], text, user.username, form.get("reason") or "上传政策文件", meta=meta,
                action="upload")
    except kb.InvalidKnowledge as exc:
        session.rollback()
        return _documents_page(request, user, session, 422, errors=[f"{p.field}：{p.message}" for p in exc.problems],
                               meta=meta)
    session.commit()
    return RedirectResponse(f"/admin/documents?msg={_q('已保存 ' + meta['file'] + '，下次构建索引生效')}", status_code=303)
