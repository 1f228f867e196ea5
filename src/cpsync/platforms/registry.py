"""Every platform cpsync knows, by name, written out by hand."""

from __future__ import annotations

from cpsync.platforms import (
    atcoder,
    code360,
    codechef,
    codeforces,
    geeksforgeeks,
    hackerrank,
    leetcode,
)
from cpsync.platforms.base import Platform

PLATFORMS: dict[str, Platform] = {
    codeforces.NAME: codeforces.PLATFORM,
    leetcode.NAME: leetcode.PLATFORM,
    codechef.NAME: codechef.PLATFORM,
    atcoder.NAME: atcoder.PLATFORM,
    hackerrank.NAME: hackerrank.PLATFORM,
    geeksforgeeks.NAME: geeksforgeeks.PLATFORM,
    code360.NAME: code360.PLATFORM,
}
