"""The platforms Sara reads carts from (SPEC §11). A sixth one is a module and a line here."""

from __future__ import annotations

from recovery.sources.base import Source
from recovery.sources.hotmart import Hotmart
from recovery.sources.kiwify import Kiwify
from recovery.sources.nuvemshop import Nuvemshop
from recovery.sources.shopify import Shopify
from recovery.sources.yampi import Yampi

SOURCES: dict[str, Source] = {
    source.name: source for source in (Shopify(), Nuvemshop(), Yampi(), Hotmart(), Kiwify())
}


def source(name: str) -> Source | None:
    return SOURCES.get(name)
