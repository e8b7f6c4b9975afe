"""What a notice says, then how each target shows it.

``summarize`` turns an event envelope into a neutral summary (title, status,
ordered fields, link); ``feishu_card``, ``dingtalk_markdown`` and
``webhook_body`` shape that for their target.
"""
from __future__ import annotations

from dataclasses import dataclass, field

COLOURS = {"succeeded": "green", "failed": "red", "expiring": "orange", "test": "blue"}


@dataclass
class Summary:
    title: str
    status: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    link: str | None = None


def _text(value) -> str:
    return "" if value is None else str(value)


def record_link(console_url: str, record_id) -> str | None:
    if record_id in (None, ""):
        return None
    return f"{console_url.rstrip('/')}/#/records/{record_id}"


def clusters_line(targets) -> str:
    parts = []
    for t in targets or []:
        line = f"{_text(t.get('cluster'))} ({_text(t.get('env'))}): {_text(t.get('status'))}"
        why = t.get("reason") or t.get("message")
        if why:
            line += f", {why}"
        parts.append(line)
    return "; ".join(parts)


def _progress(noun: str, status: str, data: dict, what: str, fields: list, link: str | None,
              optional: tuple = ()) -> Summary:
    """A deploy's or a build's notice: "<noun> <status>: <app>/<service> <what>", the app
    and service then ``fields``, then each ``optional`` (label, key) the event carries."""
    app, service = _text(data.get("app")), _text(data.get("service"))
    summary = Summary(title=f"{noun} {status}: {app}/{service} {_text(data.get(what))}", status=status,
                      fields=[("App", app), ("Service", service), *fields], link=link)
    for label, key in optional:
        if data.get(key):
            summary.fields.append((label, _text(data[key])))
    return summary


def summarize(event_name: str, envelope: dict, console_url: str) -> Summary:
    data = envelope.get("data") or {}
    status = _text(data.get("status") or event_name.split(".", 1)[-1])
    if event_name.startswith("deploy."):
        return _progress("Deploy", status, data, "version",
                         [("Version", _text(data.get("version"))), ("Action", _text(data.get("action"))),
                          ("Status", status), ("Clusters", clusters_line(data.get("targets")))],
                         record_link(console_url, data.get("record_id")),
                         (("Reason", "reason"), ("By", "created_by")))
    if event_name.startswith("build."):
        return _progress("Build", status, data, "ref",
                         [("Ref", _text(data.get("ref"))), ("Build", _text(data.get("build_number"))),
                          ("Image", _text(data.get("image"))), ("Status", status)],
                         data.get("link") or None, (("Reason", "reason"),))
    if event_name == "server.expiring":
        days = data.get("days_left")
        name = _text(data.get("name"))
        if not isinstance(days, int):
            title = f"Server {name} is expiring"
        elif days < 0 or data.get("expired"):
            ago = -days if days < 0 else 0
            title = (f"Server {name} expired {ago} day{'s' if ago != 1 else ''} ago" if ago
                     else f"Server {name} has expired")
        elif days == 0:
            title = f"Server {name} expires today"
        else:
            title = f"Server {name} expires in {days} day{'s' if days != 1 else ''}"
        return Summary(
            title=title,
            status="expiring",
            fields=[("Server", _text(data.get("name"))), ("IP", _text(data.get("ip"))),
                    ("Provider", _text(data.get("provider"))),
                    ("Expires at", _text(data.get("expires_at"))), ("Days left", _text(days)),
                    ("Owner", _text(data.get("owner")))],
            link=f"{console_url.rstrip('/')}/#/servers/{data.get('server_id')}",
        )
    if event_name == "cluster.unreachable":
        name = _text(data.get("cluster"))
        return Summary(
            title=f"Cluster {name} is unreachable",
            status="failed",
            fields=[("Cluster", name), ("Env", _text(data.get("env"))), ("Server", _text(data.get("server"))),
                    ("Since", _text(data.get("since"))), ("Error", _text(data.get("error")))],
            link=f"{console_url.rstrip('/')}/#/clusters/{name}",
        )
    return Summary(title=_text(data.get("title") or event_name), status="test",
                   fields=[(k.capitalize(), _text(v)) for k, v in data.items() if k != "title"])


def feishu_card(summary: Summary) -> dict:
    elements: list[dict] = [{
        "tag": "div",
        "fields": [{"is_short": name not in ("Clusters", "Reason"),
                    "text": {"tag": "lark_md", "content": f"**{name}**\n{value or '-'}"}}
                   for name, value in summary.fields],
    }]
    if summary.link:
        elements.append({"tag": "action", "actions": [{
            "tag": "button", "type": "primary", "url": summary.link,
            "text": {"tag": "plain_text", "content": "Open in MAE"}}]})
    return {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {"template": COLOURS.get(summary.status, "blue"),
                       "title": {"tag": "plain_text", "content": summary.title}},
            "elements": elements,
        },
    }


def dingtalk_markdown(summary: Summary) -> dict:
    lines = [f"### {summary.title}", ""]
    lines += [f"- **{name}**: {value or '-'}" for name, value in summary.fields]
    if summary.link:
        lines += ["", f"[Open in MAE]({summary.link})"]
    return {"msgtype": "markdown", "markdown": {"title": summary.title, "text": "\n".join(lines)}}


def webhook_body(event_name: str, envelope: dict, summary: Summary) -> dict:
    return {
        "event": event_name,
        "event_id": envelope.get("event_id"),
        "occurred_at": envelope.get("occurred_at"),
        "title": summary.title,
        "link": summary.link,
        "data": envelope.get("data") or {},
    }
