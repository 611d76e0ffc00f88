"""Fake SMS providers for tests: real HTTP servers on 127.0.0.1 that check requests as the real ones do.

Each fake verifies every request's signature INDEPENDENTLY of the production code (its own
encoding, canonical strings and HMACs, recomputed from the secret it was given), checks
the parameters the provider requires, and answers with the provider's real response
shapes. A request whose signature or parameters are wrong is recorded in ``rejected`` and
answered the way the provider answers it (Alibaba ``SignatureDoesNotMatch`` with HTTP 400,
Tencent ``AuthFailure.SignatureFailure`` inside ``Response.Error``). What the fake answers
to good requests is set on it::

    with FakeAliyun(secret="s3cret") as fake:
        fake.links["13800000000"] = "https://x/m/1-a"  # that number's TemplateParam(Json) must carry this link
        fake.invalid.add("13800000000")       # that number is refused (isv.MOBILE_NUMBER_ILLEGAL)
        fake.limited.add("13900000000")       # that number is rate-limited (isv.BUSINESS_LIMIT_CONTROL)
        fake.mode = "server_error"            # 503 ServiceUnavailable; "sleep": answer after sleep_for s
        fake.variable_rules = False           # Alibaba only: accept variables it would refuse (see below)
        fake.requests[0]                      # the verified requests' parameters, in order
"""
from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["FakeAliyun", "FakeGateway", "FakeTencent"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client that gave up: not our concern
        pass


class _Fake:
    """A server on 127.0.0.1 on a free port, handling requests with :meth:`answer`."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.sleep_for = 1.5
        self.requests: list[Any] = []
        self.rejected: list[str] = []
        self.invalid: set[str] = set()
        self.limited: set[str] = set()
        self._release = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._lock:
                    status, extra, answer = fake.answer(self.path, headers, body)
                if fake.mode == "sleep" and status != 0:
                    fake._release.wait(fake.sleep_for)
                data = answer if isinstance(answer, bytes) else json.dumps(answer, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", extra.pop("Content-Type", "application/json;charset=utf-8"))
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            do_PUT = do_POST  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> _Fake:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError


# ---------------------------------------------------------------- Alibaba Cloud SMS (RPC, signature 1.0)


def _pop_encode(text: str) -> str:
    """Alibaba's POP percent-encoding, byte by byte: unreserved characters kept, the rest %XY."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if byte < 128 and (char.isalnum() or char in "-_.~"):
            out.append(char)
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _iso_utc(text: str) -> float:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


class FakeAliyun(_Fake):
    """dysmsapi 2017-05-25: SendSms and SendBatchSms by POST form, checked with the AccessKey secret."""

    def __init__(self, access_key_id: str = "LTAI-test-id", secret: str = "test-secret", sign_name: str = "江门科普",
                 templates: set[str] | None = None) -> None:
        super().__init__()
        self.access_key_id = access_key_id
        self.secret = secret
        self.sign_name = sign_name
        self.templates = templates or {"SMS_100000001"}
        self.nonces: set[str] = set()
        #: Number (11 digits) -> the ``link`` parameter its text must carry: a batch whose
        #: TemplateParamJson is not one object per number, in PhoneNumberJson's order, is refused.
        self.links: dict[str, str] = {}
        #: Refuse variables as Alibaba's notification templates do: more than 35 characters
        #: (``isv.PARAM_LENGTH_LIMIT``), a link outside the variables declared as links
        #: (``isv.PARAM_NOT_SUPPORT_URL``), the signature's 【】 (``isv.INVALID_PARAMETERS``).
        self.variable_rules = True
        #: The variables the templates declare as links (the reminder page).
        self.link_variables = {"link"}

    @staticmethod
    def _request_id() -> str:
        return str(uuid.uuid4()).upper()

    def _error(self, status: int, code: str, message: str) -> tuple[int, dict[str, str], Any]:
        return status, {}, {"RequestId": self._request_id(), "Message": message, "Code": code}

    #: What Alibaba's filter takes for a link: a scheme, www., or a domain of a usual suffix.
    _LINKISH = re.compile(r"[a-z]+://|www\.|[a-z0-9-]\.(?:cn|com|net|org)(?![a-z])", re.IGNORECASE)

    def _variables_refused(self, template_params: list[Any]) -> tuple[str, str, str] | None:
        """``(name, code, message)`` of the first variable Alibaba would refuse, or ``None``."""
        for values in template_params:
            for name, value in values.items():
                if name in self.link_variables:
                    continue
                if len(value) > 35:
                    return name, "isv.PARAM_LENGTH_LIMIT", "参数超出长度限制"
                if self._LINKISH.search(value):
                    return name, "isv.PARAM_NOT_SUPPORT_URL", "不支持url为变量"
                if "【" in value or "】" in value:
                    return name, "isv.INVALID_PARAMETERS", "参数异常"
        return None

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            self.rejected.append("content type")
            return self._error(400, "InvalidParameter", "form expected")
        params = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True))
        signature = params.pop("Signature", "")
        canonical = "&".join(f"{_pop_encode(k)}={_pop_encode(v)}" for k, v in sorted(params.items()))
        string_to_sign = "POST&" + _pop_encode("/") + "&" + _pop_encode(canonical)
        expected = base64.b64encode(
            hmac.new((self.secret + "&").encode(), string_to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        if params.get("AccessKeyId") != self.access_key_id:
            self.rejected.append("access key id")
            return self._error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if not hmac.compare_digest(signature, expected):
            self.rejected.append("signature")
            return 400, {}, {
                "RequestId": self._request_id(), "HostId": "dysmsapi.aliyuncs.com", "Code": "SignatureDoesNotMatch",
                "Message": f"Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}",
                "Recommend": "https://api.aliyun.com/troubleshoot?q=SignatureDoesNotMatch",
            }
        common = {"Format": "JSON", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "Version": "2017-05-25"}
        for key, value in common.items():
            if params.get(key) != value:
                self.rejected.append(key)
                return self._error(400, "InvalidParameter", f"{key} is invalid")
        nonce = params.get("SignatureNonce", "")
        if not nonce or nonce in self.nonces:
            self.rejected.append("nonce")
            return self._error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self.nonces.add(nonce)
        if abs(_iso_utc(params.get("Timestamp", "1970-01-01T00:00:00Z")) - time.time()) > 15 * 60:
            self.rejected.append("timestamp")
            return self._error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        action = params.get("Action")
        if params.get("TemplateCode") not in self.templates:
            self.rejected.append("template")
            return self._error(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        if action == "SendSms":
            phones = [params.get("PhoneNumbers", "")]
            signs = [params.get("SignName")]
            template_params = [json.loads(params.get("TemplateParam", "{}"))]
        elif action == "SendBatchSms":
            phones = json.loads(params.get("PhoneNumberJson", "[]"))
            signs = json.loads(params.get("SignNameJson", "[]"))
            template_params = json.loads(params.get("TemplateParamJson", "[]"))
            if not (len(phones) == len(signs) == len(template_params)) or not 1 <= len(phones) <= 100:
                self.rejected.append("batch shape")
                return self._error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        else:
            self.rejected.append("action")
            return self._error(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
        if any(sign != self.sign_name for sign in signs):
            self.rejected.append("sign name")
            return self._error(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        if any(not isinstance(p, dict) or not all(isinstance(v, str) for v in p.values()) for p in template_params):
            self.rejected.append("template params")
            return self._error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        for phone, values in zip(phones, template_params, strict=True):
            if phone in self.links and values.get("link") != self.links[phone]:
                self.rejected.append("link")
                return self._error(200, "isv.INVALID_JSON_PARAM", "模板变量与号码不对应")
        refused = self._variables_refused(template_params) if self.variable_rules else None
        if refused:
            self.rejected.append(f"variable {refused[0]}")
            return self._error(200, *refused[1:])
        if len(params.get("OutId", "")) >= 256:
            self.rejected.append("OutId")
            return self._error(200, "isv.INVALID_PARAMETERS", "OutId is too long")
        self.requests.append({**params, "phones": phones, "template_params": template_params})
        if self.mode == "server_error":
            return self._error(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
        if self.mode == "throttle":
            return self._error(400, "Throttling.User", "Request was denied due to user flow control.")
        for phone in phones:
            if not re.fullmatch(r"1[3-9]\d{9}", phone) or phone in self.invalid:
                return self._error(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if any(phone in self.limited for phone in phones):
            return self._error(200, "isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:10")
        return 200, {}, {"RequestId": self._request_id(), "Message": "OK", "Code": "OK",
                         "BizId": f"{len(self.requests):06d}^0"}


# ---------------------------------------------------------------- Tencent Cloud SMS (TC3-HMAC-SHA256)

_AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)/tc3_request, "
    r"SignedHeaders=(?P<signed>[a-z;\-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


class FakeTencent(_Fake):
    """sms 2021-01-11 SendSms: checks the TC3 signature from the SecretKey, answers per number."""

    def __init__(self, secret_id: str = "AKID-test", secret_key: str = "test-key", sdk_app_id: str = "1400000001",
                 sign_name: str = "江门科普", region: str = "ap-guangzhou", templates: dict[str, int] | None = None) -> None:
        super().__init__()
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.region = region
        self.templates = templates or {"1110": 3}  # template id -> number of variables
        #: Answer the numbers' statuses in reverse order (Tencent does not promise the request's order).
        self.reverse = False

    @staticmethod
    def _wrap(response: dict[str, Any]) -> dict[str, Any]:
        return {"Response": {**response, "RequestId": str(uuid.uuid4())}}

    def _error(self, code: str, message: str) -> tuple[int, dict[str, str], Any]:
        return 200, {}, self._wrap({"Error": {"Code": code, "Message": message}})

    def _expected_signature(self, date: str, timestamp: str, content_type: str, host: str, body: bytes) -> str:
        def sign(key: bytes, text: str) -> bytes:
            return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()

        canonical = (f"POST\n/\n\ncontent-type:{content_type}\nhost:{host}\n\ncontent-type;host\n"
                     f"{hashlib.sha256(body).hexdigest()}")
        to_sign = (f"TC3-HMAC-SHA256\n{timestamp}\n{date}/sms/tc3_request\n"
                   f"{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}")
        secret_date = sign(("TC3" + self.secret_key).encode("utf-8"), date)
        secret_signing = sign(sign(secret_date, "sms"), "tc3_request")
        return hmac.new(secret_signing, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        match = _AUTH.match(headers.get("authorization", ""))
        if not match:
            self.rejected.append("authorization")
            return self._error("AuthFailure.InvalidAuthorization", "Authorization header is invalid.")
        if match["id"] != self.secret_id:
            self.rejected.append("secret id")
            return self._error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        timestamp = headers.get("x-tc-timestamp", "")
        if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > 300:
            self.rejected.append("timestamp")
            return self._error("AuthFailure.SignatureExpire", "Signature expired.")
        if match["date"] != time.strftime("%Y-%m-%d", time.gmtime(int(timestamp))) or match["service"] != "sms":
            self.rejected.append("credential scope")
            return self._error("AuthFailure.SignatureFailure", "Credential scope is wrong.")
        if match["signed"] != "content-type;host":
            self.rejected.append("signed headers")
            return self._error("AuthFailure.SignatureFailure", "Signed headers are wrong.")
        expected = self._expected_signature(match["date"], timestamp, headers.get("content-type", ""),
                                            headers.get("host", ""), body)
        if not hmac.compare_digest(expected, match["sig"]):
            self.rejected.append("signature")
            return self._error("AuthFailure.SignatureFailure",
                               "The provided credentials could not be validated. Please check your signature is correct.")
        if headers.get("x-tc-action") != "SendSms" or headers.get("x-tc-version") != "2021-01-11":
            self.rejected.append("action")
            return self._error("InvalidAction", "The action is not found.")
        if headers.get("x-tc-region") != self.region:
            self.rejected.append("region")
            return self._error("InvalidParameterValue", "The region is invalid.")
        if not headers.get("content-type", "").startswith("application/json"):
            self.rejected.append("content type")
            return self._error("InvalidParameter", "JSON expected.")
        request = json.loads(body)
        phones = request.get("PhoneNumberSet")
        if not isinstance(phones, list) or not 1 <= len(phones) <= 200 or len(set(phones)) != len(phones):
            self.rejected.append("PhoneNumberSet")
            return self._error("InvalidParameterValue.IncorrectPhoneNumber", "PhoneNumberSet is invalid.")
        if request.get("SmsSdkAppId") != self.sdk_app_id:
            self.rejected.append("SmsSdkAppId")
            return self._error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId does not exist.")
        if request.get("SignName") != self.sign_name:
            self.rejected.append("SignName")
            return self._error("FailedOperation.SignatureIncorrectOrUnapproved", "The signature is not approved.")
        variables = self.templates.get(str(request.get("TemplateId")))
        template_params = request.get("TemplateParamSet")
        if variables is None or not isinstance(template_params, list) or len(template_params) != variables \
                or not all(isinstance(p, str) for p in template_params):
            self.rejected.append("template")
            return self._error("FailedOperation.TemplateIncorrectOrUnapproved", "The template does not match.")
        context = request.get("SessionContext", "")
        if not isinstance(context, str) or len(context.encode()) >= 512:
            self.rejected.append("SessionContext")
            return self._error("InvalidParameterValue", "SessionContext is too long.")
        self.requests.append(request)
        if self.mode == "server_error":
            return 502, {"Content-Type": "text/html"}, b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        if self.mode == "throttle":
            return self._error("RequestLimitExceeded", "Your current request times equals to `3001` in a second.")
        statuses = []
        for n, phone in enumerate(phones):
            status = {"SerialNo": "", "PhoneNumber": phone, "Fee": 0, "SessionContext": context, "IsoCode": "CN"}
            if not re.fullmatch(r"\+861[3-9]\d{9}", phone) or phone in self.invalid:
                status.update(Code="InvalidParameterValue.IncorrectPhoneNumber", Message="incorrect number format")
            elif phone in self.limited:
                status.update(Code="LimitExceeded.PhoneNumberDailyLimit",
                              Message="the number of SMS messages sent from a single mobile number every day exceeds the upper limit")
            else:
                status.update(SerialNo=f"2645:{len(self.requests):04d}{n:04d}", Fee=1, Code="Ok", Message="send success")
            statuses.append(status)
        if self.reverse:
            statuses.reverse()
        return 200, {}, self._wrap({"SendStatusSet": statuses})


# ---------------------------------------------------------------- a generic HTTP gateway


class FakeGateway(_Fake):
    """Takes JSON ``{"id", "phone"|"phones", "text"}``, or ``{"messages": [{"id", "phone", "text"}, ...]}`` (a text per
    number), with a bearer token; answers ``{"code": 0, "data": {"id": ...}}``."""

    def __init__(self, token: str = "test-token") -> None:
        super().__init__()
        self.token = token

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        if headers.get("authorization") != f"Bearer {self.token}":
            self.rejected.append("token")
            return 401, {}, {"code": 401, "msg": "unauthorized"}
        if not headers.get("content-type", "").startswith("application/json"):
            self.rejected.append("content type")
            return 415, {}, {"code": 415, "msg": "json expected"}
        try:
            request = json.loads(body)
        except ValueError:
            self.rejected.append("json")
            return 400, {}, {"code": 400, "msg": "bad json"}
        if "messages" in request:
            listed = request["messages"]
            ok = isinstance(listed, list) and listed and all(
                isinstance(m, dict) and set(m) == {"id", "phone", "text"} and all(isinstance(v, str) for v in m.values())
                and m["id"] and m["text"].startswith("【") for m in listed)
            if not ok:
                self.rejected.append("messages")
                return 400, {}, {"code": 400, "msg": "messages: a list of {id, phone, text} required"}
            phones = [m["phone"] for m in listed]
        else:
            phones = request["phones"].split(",") if "phones" in request else [request.get("phone", "")]
            if not request.get("text", "").startswith("【") or not request.get("id"):
                self.rejected.append("fields")
                return 400, {}, {"code": 400, "msg": "text and id required"}
        self.requests.append(request)
        if self.mode == "server_error":
            return 500, {}, {"code": 500, "msg": "internal error"}
        if self.mode == "rate_limited":
            return 429, {"Retry-After": "30"}, {"code": 429, "msg": "slow down"}
        bad = [p for p in phones if not re.fullmatch(r"\+861[3-9]\d{9}", p) or p in self.invalid]
        if bad:
            return 200, {}, {"code": 1001, "msg": f"invalid number {bad[0]}"}
        return 200, {}, {"code": 0, "msg": "ok", "data": {"id": f"gw-{len(self.requests)}"}}
