"""Sources: where papers come from, one module per type behind one small interface.

    source.fetch(http, now) -> SourceBatch        (raises FetchError when the whole source fails)

| type       | module      | reads                                                  |
| ---------- | ----------- | ------------------------------------------------------ |
| `hf_daily` | hf_daily.py | the Hugging Face Daily Papers JSON API, by listing day |
| `feed`     | feed.py     | any RSS 2.0 / Atom 1.0 feed, arXiv listings understood |
| `listing`  | listing.py  | a plain-text snapshot of the trending page (file/URL)  |

Each module keeps parsing pure (`parse_*(bytes or text) -> SourceBatch`) and does its I/O in
`fetch` through `digest.http.Http`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from digest.config import SourceConfig
from digest.http import Http
from digest.types import SourceBatch


class Source(Protocol):
    """Anything that can fetch papers once."""

    name: str

    def fetch(self, http: Http, now: datetime) -> SourceBatch:
        """Fetch once at logical time `now`; item problems go in the batch, a total failure raises."""
        ...


def make_source(config: SourceConfig) -> Source:
    """The source object for one `sources:` entry of the config."""
    from digest.sources import feed, hf_daily, listing

    kinds: dict[str, type[Source]] = {
        "hf_daily": hf_daily.HFDailySource,
        "feed": feed.FeedSource,
        "listing": listing.ListingSource,
    }
    return kinds[config.type](config)  # type: ignore[call-arg]
