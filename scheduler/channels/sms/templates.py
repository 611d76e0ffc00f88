"""SMS texts: one approved template per message type, named parameters, measured in segments.

A provider's approved template (Alibaba ``TemplateCode``, Tencent ``TemplateId``) has the
same wording and parameters as :data:`TEMPLATES`, so the text the organizer previews is
the text people get. Texts are counted the way Chinese carriers bill them: a text with any
non-GSM character is UCS-2, 70 characters in one segment, 67 per segment when longer. A
text over :data:`MAX_CHARS` is shortened on its longest parameter (the title or the place,
with an ellipsis), never cut in the middle of a character or of the fixed wording.

People's text in a parameter (:data:`FREE_TEXT`: the title, the place, the meeting point, the
reason, the change) is made fit for the providers' variable rules first (:func:`variable`), for
every row, old ones too:

* no control or invisible formatting character (U+202E and the like, :mod:`scheduler.util.text`);
* no 【】: the brackets are the signature's, and Alibaba, Tencent, Baidu and Huawei refuse them in
  templates and variables. They become full-width parentheses （）, as do 〖〗 and [] ［］ (Alibaba
  lists 〖〗「」『』 among the special symbols it refuses; Baidu and Huawei refuse [] as well, Alibaba at
  either end of a template), and （） is ordinary Chinese punctuation every provider takes;
* no link: Tencent takes no link (short links neither) in a variable ("模板中的变量参数不允许传链接",
  its template FAQ), Alibaba none outside a variable declared as a link (``isv.PARAM_NOT_SUPPORT_URL``),
  and both want links fixed in the approved template, on ICP-filed addresses. ``http(s)://…``, ``www.…``, e-mail addresses and
  bare domains of the usual suffixes (``example.cn/x``) are dropped; a parameter left empty says
  :data:`SEE_EVENT_PAGE`. The ``link`` parameter (our own reminder page, on ``BASE_URL``) is the
  one link variable the approved templates declare, and is kept;
* at most :data:`PARAM_MAX_CHARS` characters: Alibaba's notification templates take 1-35 characters
  per variable (``isv.PARAM_LENGTH_LIMIT`` beyond; help.aliyun.com "申请短信模板": 单个变量的长度限制为
  1~35个字符). Tencent sets each template's variable lengths in its console; 35 is the documented
  figure we know of. A text over :data:`MAX_CHARS` is still shortened as above.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from scheduler.util.text import clean_text

#: The 【签名】 the provider puts in front (counted, as carriers count it).
DEFAULT_SIGN = "江门科技"
#: Longest text we send (providers accept ~500; three segments keep costs and screens sane).
MAX_CHARS = 201
#: Parameters no shortening may cut below.
_MIN_PARAM = 6

TEMPLATES: dict[str, str] = {
    "reminder": "您报名的“{title}”将于{time}开始，地点：{place}{meeting}。管理提醒：{link}",
    "cancellation": "很抱歉，您报名的“{title}”（原定{time}）已取消{reason}。管理提醒：{link}",
    "change": "您报名的“{title}”有变更：{change}。管理提醒：{link}",
    "promotion": "您已从候补转为正式报名：“{title}”，{time}开始，地点：{place}。管理提醒：{link}",
    "stage": "您报名的“{title}”{stage}时间：{time}，请留意。管理提醒：{link}",
    "verify": "您的验证码为{code}，{minutes}分钟内有效。如非本人操作，请忽略本短信。",
}
#: Parameters each template takes, in the order Tencent's ordered ``TemplateParamSet`` uses.
PARAMS: dict[str, tuple[str, ...]] = {
    "reminder": ("title", "time", "place", "meeting", "link"),
    "cancellation": ("title", "time", "reason", "link"),
    "change": ("title", "change", "link"),
    "promotion": ("title", "time", "place", "link"),
    "stage": ("title", "stage", "time", "link"),
    "verify": ("code", "minutes"),
}
#: Parameters that carry people's text (made fit for the providers' variable rules by :func:`variable`).
FREE_TEXT = ("title", "place", "meeting", "reason", "change", "stage")
#: Characters one variable holds at most (Alibaba Cloud's notification templates: 1-35).
PARAM_MAX_CHARS = 35
#: What a parameter that held only a link says instead (providers refuse empty variables).
SEE_EVENT_PAGE = "详见活动页面"
#: The signature's brackets and their look-alikes → full-width parentheses.
_BRACKETS = str.maketrans({"【": "（", "】": "）", "〖": "（", "〗": "）", "[": "（", "]": "）", "［": "（", "］": "）"})
#: Links in any form a provider's filter would see as one: with a scheme, ``www.``, an e-mail
#: address, or a bare domain of a usual suffix (a path after it included). ASCII only, so that
#: Chinese text written straight after a link is kept.
_LINK = re.compile(
    r"(?:[a-z][a-z0-9+.-]*://|www\.)[!-~]*"
    r"|(?<![a-z0-9.@-])(?:[a-z0-9._%+-]+@)?(?:[a-z0-9-]+\.)+"
    r"(?:cn|com|net|org|gov|edu|top|xyz|vip|cc|io|me|info|link|site|ink|ren|wang|club|shop|co|tv|biz|mobi)"
    r"(?![a-z0-9-])(?:[/:?#][!-~]*)?",
    re.IGNORECASE,
)
#: Which parameters may be shortened, most expendable first.
_SHORTENABLE = ("meeting", "place", "reason", "change", "title")
_GSM = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")


@dataclass(frozen=True)
class Rendered:
    """A text ready to send, with what the provider's template needs."""

    template: str
    params: dict[str, str]
    text: str
    segments: int


def local_time(value: dt.datetime, tz_name: str) -> str:
    """``6月22日 09:00`` in the event's time zone: how dates are written here."""
    local = value.astimezone(ZoneInfo(tz_name))
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def segments(text: str) -> int:
    """How many billed segments a text is (UCS-2 for Chinese: 70, then 67 per segment)."""
    if all(ch in _GSM for ch in text):
        return 1 if len(text) <= 160 else -(-len(text) // 153)
    return 1 if len(text) <= 70 else -(-len(text) // 67)


def variable(value: str, max_chars: int = PARAM_MAX_CHARS) -> str:
    """People's text as a provider takes it in a variable: on one line, without control or invisible
    characters, 【】 (and look-alikes) as （）, links dropped, at most ``max_chars`` characters."""
    text = clean_text(value).translate(_BRACKETS)
    if _LINK.search(text):
        text = clean_text(_LINK.sub(" ", text)).rstrip("：:，,;；") or SEE_EVENT_PAGE
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text


def render(template: str, params: dict[str, str], sign: str = DEFAULT_SIGN, max_chars: int = MAX_CHARS) -> Rendered:
    """Fill ``template`` with ``params`` (missing ones empty), people's text made fit for the providers'
    variables (:func:`variable`), shortening a parameter if the text is too long."""
    values = {name: variable(value) if name in FREE_TEXT and value else clean_text(value)
              for name in PARAMS[template] for value in [params.get(name, "")]}
    text = _fill(template, values, sign)
    for name in _SHORTENABLE:
        over = len(text) - max_chars
        if over <= 0:
            break
        value = values.get(name, "")
        if len(value) > _MIN_PARAM:
            keep = max(_MIN_PARAM, len(value) - over - 1)
            values[name] = value[:keep] + "…"
            text = _fill(template, values, sign)
    return Rendered(template, values, text, segments(text))


def _fill(template: str, values: dict[str, str], sign: str) -> str:
    return f"【{sign}】" + TEMPLATES[template].format(**values)
