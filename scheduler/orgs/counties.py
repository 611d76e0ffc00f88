"""The counties (districts and county-level cities) of Jiangmen."""
from __future__ import annotations

#: slug -> (Chinese name, English name)
COUNTIES: dict[str, tuple[str, str]] = {
    "pengjiang": ("蓬江区", "Pengjiang District"),
    "jianghai": ("江海区", "Jianghai District"),
    "xinhui": ("新会区", "Xinhui District"),
    "taishan": ("台山市", "Taishan"),
    "kaiping": ("开平市", "Kaiping"),
    "heshan": ("鹤山市", "Heshan"),
    "enping": ("恩平市", "Enping"),
}
