"""SMS texts: one approved template per message type, named parameters, measured in segments.

A provider's approved template (Alibaba ``TemplateCode``, Tencent ``TemplateId``) has the
same wording and parameters as :data:`TEMPLATES`, so the text the organizer previews is
the text people get. Texts are counted the way Chinese carriers bill them: a text with any
non-GSM character is UCS-2, 70 characters in one segment, 67 per segment when longer. A
text over :data:`MAX_CHARS` is shortened on its longest parameter (the title or the place,
with an ellipsis), never cut in the middle of a character or of the fixed wording.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

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


def render(template: str, params: dict[str, str], sign: str = DEFAULT_SIGN, max_chars: int = MAX_CHARS) -> Rendered:
    """Fill ``template`` with ``params`` (missing ones empty), shortening a parameter if the text is too long."""
    values = {name: params.get(name, "") for name in PARAMS[template]}
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
