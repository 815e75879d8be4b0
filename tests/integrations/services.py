"""Local stand-ins for the channels, on the receiver at 127.0.0.1: each checks the request
shape its real API documents (paths, headers, form fields, signatures, sizes) and answers
as the real service does, its refusals included. What a request got wrong is also kept in
`problems`, so a test can say which rule it broke. Written from the channels' documents,
not from the adapters: nothing here imports them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .receiver import Answer, Received

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(body, ensure_ascii=False).encode(), headers or {})


def png_size(data: bytes) -> tuple[int, int] | None:
    """A PNG's width and height from its IHDR chunk, None for anything else."""
    if not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


@dataclass
class Service:
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refuse(self, problem: str, answer: Answer) -> Answer:
        self.problems.append(problem)
        return answer


# ----------------------------------------------------------------------------- Discourse --
@dataclass
class Topic:
    id: int
    title: str
    category: int
    external_id: str | None
    posts: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return "topic" if not re.sub(r"[^a-z0-9]+", "", self.title.lower()) else \
            re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


@dataclass
class FakeDiscourse(Service):
    """Discourse's API as an admin key sees it: `Api-Key` and `Api-Username` on every call;
    `POST /posts.json` (a topic: `title` 15-255 characters, `category`, `raw`, `external_id`
    of at most 50 `[\\w-]` characters and unique; a reply: `topic_id`, `raw` of 20 to 32,000
    characters), `POST /uploads.json` (multipart, `type=composer`, a file), `GET
    /t/external_id/<id>.json` (a 301 to the topic), `GET /session/current.json`."""

    base: str = ""
    api_key: str = "key-abc"
    api_username: str = "system"
    categories: tuple[int, ...] = (7,)
    topics: dict[int, Topic] = field(default_factory=dict)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    lose_answers: int = 0  # answer this many accepted posts with a 502, as a lost answer
    _ids: int = 100

    def __call__(self, request: Received) -> Answer:
        with self.lock:
            return self._serve(request)

    def _serve(self, request: Received) -> Answer:
        if (request.headers.get("api-key"), request.headers.get("api-username")) != (
                self.api_key, self.api_username):
            return self.refuse("Api-Key / Api-Username", reply(403, {
                "errors": ["You are not permitted to view the requested resource. "
                           "The API username or key is invalid."], "error_type": "invalid_access"}))
        if (request.method, request.path) == ("GET", "/session/current.json"):
            return reply(200, {"current_user": {"id": 1, "username": self.api_username}})
        if (request.method, request.path) == ("POST", "/uploads.json"):
            return self._upload(request)
        if (request.method, request.path) == ("POST", "/posts.json"):
            return self._post(request)
        found = re.fullmatch(r"/t/external_id/([^/]+)\.json", request.path)
        if request.method == "GET" and found:
            topic = next((t for t in self.topics.values() if t.external_id == found.group(1)), None)
            if topic is None:
                return reply(404, {"errors": ["The requested URL or resource could not be found."],
                                   "error_type": "not_found"})
            return Answer(301, b"", {"Location": f"{self.base}/t/{topic.slug}/{topic.id}.json"})
        return self.refuse(f"unknown call {request.method} {request.path}", reply(404, {"errors": ["not found"]}))

    def _upload(self, request: Received) -> Answer:
        try:
            parts = request.multipart()
        except ValueError as error:
            return self.refuse(f"upload: {error}", reply(422, {"errors": ["no file"]}))
        kind = [p.text for p in parts.get("type", [])]
        files = [p for name in ("file", "files[]") for p in parts.get(name, []) if p.filename]
        if kind != ["composer"] or len(files) != 1:
            return self.refuse("upload: type=composer and one file", reply(422, {"errors": ["invalid upload"]}))
        size = png_size(files[0].data)
        if size is None:
            return self.refuse("upload: not a PNG", reply(422, {"errors": ["Sorry, the file is not an image."]}))
        sha1 = hashlib.sha1(files[0].data).hexdigest()  # noqa: S324 (Discourse names uploads by it)
        short = base64.b32encode(bytes.fromhex(sha1)[:10]).decode().lower().rstrip("=")
        upload = self.uploads.setdefault(sha1, {
            "id": len(self.uploads) + 1, "url": f"/uploads/default/original/1X/{sha1}.png",
            "original_filename": files[0].filename, "filesize": len(files[0].data),
            "width": size[0], "height": size[1], "extension": "png",
            "short_url": f"upload://{short}.png", "short_path": f"/uploads/short-url/{short}.png"})
        return reply(200, upload)

    def _post(self, request: Received) -> Answer:
        if request.content_type != "application/json":
            return self.refuse("posts: a JSON body", reply(400, {"errors": ["bad request"]}))
        body = request.json()
        raw = body.get("raw")
        if not isinstance(raw, str) or not 20 <= len(raw) <= 32000:
            return self.refuse("posts: raw of 20 to 32000 characters", reply(422, {
                "action": "create_post", "errors": ["Body is too short or too long"]}))
        for short in re.findall(r"upload://[a-z0-9]+\.png", raw):
            if not any(u["short_url"] == short for u in self.uploads.values()):
                return self.refuse(f"posts: unknown upload {short}", reply(422, {"errors": ["bad upload"]}))
        if "topic_id" in body:
            topic = self.topics.get(body["topic_id"]) if isinstance(body["topic_id"], int) else None
            if topic is None:
                return self.refuse("posts: reply to an unknown topic_id", reply(404, {
                    "errors": ["The requested URL or resource could not be found."]}))
            topic.posts.append(raw)
            return self._accepted({"id": self._next(), "topic_id": topic.id, "post_number": len(topic.posts)})
        title, category, external = body.get("title"), body.get("category"), body.get("external_id")
        if not isinstance(title, str) or not 15 <= len(title) <= 255:
            return self.refuse("posts: title of 15 to 255 characters", reply(422, {
                "action": "create_post", "errors": ["Title must be between 15 and 255 characters"]}))
        if category not in self.categories:
            return self.refuse("posts: a known category", reply(422, {
                "action": "create_post", "errors": ["Category can't be blank"]}))
        if external is not None and (not isinstance(external, str) or len(external) > 50
                                     or not re.fullmatch(r"[\w-]+", external)):
            return self.refuse("posts: external_id format", reply(422, {
                "action": "create_post", "errors": ["External ID is invalid"]}))
        if external is not None and any(t.external_id == external for t in self.topics.values()):
            return reply(422, {"action": "create_post", "errors": ["External ID has already been taken"]})
        topic = Topic(self._next(), title, category, external, [raw])
        self.topics[topic.id] = topic
        return self._accepted({"id": self._next(), "topic_id": topic.id, "topic_slug": topic.slug,
                               "post_number": 1})

    def _accepted(self, answer: dict[str, Any]) -> Answer:
        if self.lose_answers:
            self.lose_answers -= 1
            return Answer(502, b"<html>Bad Gateway</html>")
        return reply(200, answer)

    def _next(self) -> int:
        self._ids += 1
        return self._ids


# -------------------------------------------------------------------------------- Weibo --
def weibo_units(text: str) -> int:
    """Weibo's count, as its web composer does it: a link (http or https, up to 140 bytes)
    is 10, other text is half a character an ASCII byte; rounded up."""
    links = re.findall(r"https?://[^\s]+", text)
    units = 0
    for link in links:
        units += 20 if len(link.encode()) <= 140 else len(link.encode()) - 120
        text = text.replace(link, "", 1)
    units += sum(1 if ord(char) <= 0x80 else 2 for char in text)
    return math.ceil(units / 2)


@dataclass
class FakeWeibo(Service):
    """`POST /2/statuses/share.json` (form or multipart: `access_token`, `status` of at most
    140 of Weibo's characters holding a link on the safe domain and no `#topic#`, `pic` a
    JPEG, PNG or GIF under 5 MB) and `POST /oauth2/get_token_info`. Errors are Weibo's
    `{"request", "error_code", "error"}`."""

    access_token: str = "2.00weibo-token"
    safe_domain: str = "shop.example.cn"
    expired: bool = False
    limited: bool = False
    statuses: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: Received) -> Answer:
        with self.lock:
            return self._serve(request)

    def error(self, request: Received, status: int, code: int, text: str) -> Answer:
        return reply(status, {"request": request.path, "error_code": str(code), "error": text})

    def _token(self, request: Received, fields: dict[str, list[str]]) -> Answer | None:
        if fields.get("access_token") != [self.access_token]:
            return self.refuse("access_token", self.error(request, 401, 21332, "invalid_access_token"))
        if self.expired:
            return self.error(request, 401, 21327, "expired_token")
        return None

    def _serve(self, request: Received) -> Answer:
        if request.method != "POST":
            return self.refuse(f"{request.method} {request.path}", self.error(request, 405, 10021, "HTTP method not supported"))
        try:
            fields = request.fields()
        except ValueError as error:
            return self.refuse(str(error), self.error(request, 400, 10008, "param error"))
        if request.path == "/oauth2/get_token_info":
            refused = self._token(request, fields)
            return refused or reply(200, {"uid": 1404376560, "appkey": "1234567", "scope": "",
                                          "create_at": 1700000000, "expire_in": 157679999})
        if request.path != "/2/statuses/share.json":
            return self.refuse(f"unknown path {request.path}", self.error(request, 404, 10020, "api not found"))
        refused = self._token(request, fields)
        if refused:
            return refused
        if self.limited:
            return self.error(request, 403, 10023, "User requests out of rate limit!")
        status = (fields.get("status") or [""])[0]
        if not status:
            return self.refuse("status missing", self.error(request, 400, 10016, "miss required parameter (status)"))
        if weibo_units(status) > 140:
            return self.refuse(f"status of {weibo_units(status)} characters",
                               self.error(request, 400, 20012, "Text too long, please input text less than 140 characters!"))
        if re.search(r"#[^#]+#", status):
            return self.refuse("a #topic# in a shared status", self.error(request, 400, 10017, "status contains #topic#"))
        hosts = [urlsplit(link).hostname or "" for link in re.findall(r"https?://[^\s]+", status)]
        if not any(h == self.safe_domain or h.endswith("." + self.safe_domain) for h in hosts):
            return self.refuse("no link on the safe domain",
                               self.error(request, 400, 10017, "parameter (status)'s value invalid, expect "
                                          "(a url of the app's safe domain)"))
        pictures = []
        if request.content_type == "multipart/form-data":
            pictures = [p for p in request.multipart().get("pic", []) if p.filename]
            if len(pictures) > 1 or any(png_size(p.data) is None for p in pictures):
                return self.refuse("pic is not one PNG", self.error(request, 400, 20005, "unsupported image type"))
            if any(len(p.data) >= 5 * 1024 * 1024 for p in pictures):
                return self.refuse("pic of 5 MB", self.error(request, 400, 20006, "image size too large"))
        if any(s["text"] == status for s in self.statuses):
            return self.error(request, 400, 20019, "repeat content!")
        posted = {"id": 3504803600500000 + len(self.statuses), "text": status,
                  "original_pic": "http://ww2.sinaimg.cn/large/poster.jpg" if pictures else None,
                  "picture": pictures[0].data if pictures else None}
        self.statuses.append(posted)
        return reply(200, {k: v for k, v in posted.items() if k != "picture"} | {
            "created_at": "Wed Oct 24 23:49:17 +0800 2012", "idstr": str(posted["id"])})


# ------------------------------------------------------------------------------- Feishu --
@dataclass
class FakeFeishu(Service):
    """A custom bot: `POST /open-apis/bot/v2/hook/<token>`, a JSON body of at most 20 KB;
    with a signing secret, `timestamp` (seconds, within an hour) and `sign` =
    base64(HMAC-SHA256(key "<timestamp>\\n<secret>", empty message)) in the body. Answers
    `{"code": 0, ...}` or the refusal's code (11232 over `limit`)."""

    token: str = "hook-token"
    secret: str | None = None
    limit: tuple[int, float] | None = None  # (5, 1.0): Feishu's 5 a second, when a test wants it
    messages: list[dict[str, Any]] = field(default_factory=list)
    _recent: deque = field(default_factory=deque)

    def __call__(self, request: Received) -> Answer:
        with self.lock:
            return self._serve(request)

    def _serve(self, request: Received) -> Answer:
        if request.path != f"/open-apis/bot/v2/hook/{self.token}":
            return self.refuse("hook token", reply(200, {
                "code": 19001, "data": {}, "msg": "param invalid: incoming webhook access token invalid"}))
        if len(request.body) > 20 * 1024:
            return self.refuse(f"a body of {len(request.body)} bytes", reply(400, {"code": 9499, "msg": "Bad Request", "data": {}}))
        try:
            body = request.json()
        except ValueError:
            return self.refuse("a JSON body", reply(400, {"code": 9499, "msg": "Bad Request", "data": {}}))
        if self.secret is not None:
            timestamp = body.get("timestamp")
            expected = None
            if isinstance(timestamp, str) and timestamp.isdigit():
                key = f"{timestamp}\n{self.secret}".encode()
                expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if (expected is None or body.get("sign") != expected
                    or abs(time.time() - int(timestamp)) > 3600):
                return self.refuse("sign or timestamp", reply(200, {
                    "code": 19021, "data": {},
                    "msg": "sign match fail or timestamp is not within one hour from current time"}))
        card = body.get("card")
        if body.get("msg_type") != "interactive" or not isinstance(card, dict) \
                or not isinstance(card.get("header", {}).get("title", {}).get("content"), str):
            return self.refuse("an interactive card with a header", reply(200, {
                "code": 9499, "data": {}, "msg": "Bad Request"}))
        now = time.monotonic()
        while self.limit and self._recent and now - self._recent[0] >= self.limit[1]:
            self._recent.popleft()
        if self.limit is not None and len(self._recent) >= self.limit[0]:
            return reply(200, {"code": 11232, "data": {}, "msg": "frequency limited"})
        self._recent.append(now)
        self.messages.append(body)
        return reply(200, {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {},
                           "msg": "success"})


# -------------------------------------------------------------------------------- WeCom --
@dataclass
class FakeWeCom(Service):
    """A group robot: `POST /cgi-bin/webhook/send?key=<key>`; `markdown` (content of at most
    4096 bytes), `image` (base64 of a JPG or PNG of at most 2 MB and the MD5 of its bytes)
    or `news` (1 to 8 articles with a title and a url); 20 messages in any minute
    (`window` seconds here), beyond which it answers errcode 45009."""

    key: str = "693a-key"
    window: float = 60.0
    messages: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    def __call__(self, request: Received) -> Answer:
        with self.lock:
            return self._serve(request)

    def _serve(self, request: Received) -> Answer:
        if request.path != "/cgi-bin/webhook/send" or request.query.get("key") != [self.key]:
            return self.refuse("webhook key", reply(200, {"errcode": 93000, "errmsg": "invalid webhook url"}))
        now = time.monotonic()
        if sum(1 for t in self.arrivals if now - t < self.window) >= 20:
            return self.refuse("over 20 messages a minute", reply(200, {
                "errcode": 45009, "errmsg": "api freq out of limit"}))
        if "\\u" in request.body.decode(errors="replace"):
            return self.refuse("\\u escapes", reply(200, {"errcode": 40033, "errmsg": "invalid charset"}))
        body = request.json()
        kind = body.get("msgtype")
        if kind == "markdown":
            content = body.get("markdown", {}).get("content", "")
            if not content or len(content.encode()) > 4096:
                return self.refuse("markdown of 4096 bytes", reply(200, {
                    "errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}))
        elif kind == "image":
            image = body.get("image", {})
            try:
                data = base64.b64decode(image.get("base64", ""), validate=True)
            except ValueError:
                data = b""
            if png_size(data) is None or len(data) > 2 * 1024 * 1024:
                return self.refuse("image: a PNG of 2 MB", reply(200, {"errcode": 40009, "errmsg": "invalid image size"}))
            if image.get("md5") != hashlib.md5(data).hexdigest():  # noqa: S324
                return self.refuse("image md5", reply(200, {"errcode": 301019, "errmsg": "media md5 not match"}))
        elif kind == "news":
            articles = body.get("news", {}).get("articles", [])
            if not 1 <= len(articles) <= 8 or not all(a.get("title") and a.get("url") for a in articles):
                return self.refuse("news articles", reply(200, {"errcode": 40008, "errmsg": "invalid message type"}))
        else:
            return self.refuse(f"msgtype {kind!r}", reply(200, {"errcode": 40008, "errmsg": "invalid message type"}))
        self.arrivals.append(now)
        self.messages.append(body)
        return reply(200, {"errcode": 0, "errmsg": "ok"})


# ----------------------------------------------------------------------------- Mastodon --
@dataclass
class FakeMastodon(Service):
    """`POST /api/v2/media` (multipart `file`, `description`), `POST /api/v1/statuses`
    (form: `status`, `media_ids[]` of uploaded media; `Idempotency-Key`), `GET
    /api/v1/accounts/verify_credentials`; `Authorization: Bearer <token>` on each."""

    token: str = "tok-abc"
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)  # by Idempotency-Key

    def __call__(self, request: Received) -> Answer:
        with self.lock:
            return self._serve(request)

    def _serve(self, request: Received) -> Answer:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self.refuse("bearer token", reply(401, {"error": "The access token is invalid"}))
        if (request.method, request.path) == ("GET", "/api/v1/accounts/verify_credentials"):
            return reply(200, {"id": "1", "username": "gz_deals"})
        if (request.method, request.path) == ("POST", "/api/v2/media"):
            files = [p for p in request.multipart().get("file", []) if p.filename]
            if len(files) != 1 or png_size(files[0].data) is None:
                return self.refuse("media: one image file", reply(422, {"error": "Validation failed"}))
            media_id = str(1000 + len(self.media))
            self.media[media_id] = {"id": media_id, "type": "image", "url": f"/m/{media_id}.png",
                                    "description": (request.fields().get("description") or [None])[0]}
            return reply(200, self.media[media_id])
        if (request.method, request.path) == ("POST", "/api/v1/statuses"):
            form = request.form()
            unknown = [m for m in form.get("media_ids[]", []) if m not in self.media]
            if unknown or not form.get("status"):
                return self.refuse("status: text and known media", reply(422, {"error": "Validation failed"}))
            key = request.headers.get("idempotency-key") or str(len(self.statuses))
            status = self.statuses.setdefault(key, {
                "id": str(9000 + len(self.statuses)), "content": form["status"][0],
                "media_attachments": [self.media[m] for m in form.get("media_ids[]", [])]})
            return reply(200, status)
        return self.refuse(f"unknown call {request.method} {request.path}", reply(404, {"error": "Not found"}))
