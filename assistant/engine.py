"""The live answering engine of one process: encoder + current index version + Answerer.

Both the FastAPI app and the Rasa action server hold one. It follows the index's CURRENT
pointer: when an admin builds or activates another version, the next request notices (a stat
call, at most every few seconds), loads the new version beside the old one, then swaps the
reference, so questions are answered throughout.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from assistant.answer import Answerer
from embeddings import index as idx
from embeddings.encoder import Encoder
from embeddings.search import HybridSearcher
from settings import Settings

log = logging.getLogger("banshitong.engine")
CHECK_EVERY = 3.0


@dataclass
class Loaded:
    version: str
    searcher: HybridSearcher
    answerer: Answerer


class Engine:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.encoder = Encoder(settings.encoder_dir, threads=settings.torch_threads, runtime=settings.encoder_runtime,
                               cache_size=settings.query_cache_size, query_noise=settings.test_query_noise,
                               noise_seed=settings.test_query_noise_seed)
        self._lock = threading.Lock()
        self._loading = False
        self._checked = time.monotonic()
        self.current = self._load(None)

    def _load(self, version: str | None) -> Loaded:
        v = idx.load(self.settings.index_dir, version, encoder=self.encoder.signature)
        searcher = HybridSearcher(v, self.encoder)
        log.info("loaded index %s (%d passages, %d guides)", v.version, len(v.passages), len(v.guides))
        return Loaded(v.version, searcher, Answerer(searcher, self.settings.min_confidence))

    def reload(self, version: str | None = None) -> str:
        """Load `version` (default: CURRENT) and swap it in; the old one serves until then."""
        loaded = self._load(version)
        with self._lock:
            self.current = loaded
        return loaded.version

    def get(self) -> Loaded:
        now = time.monotonic()
        if now - self._checked > CHECK_EVERY and not self._loading:
            self._checked = now
            latest = idx.current_version(self.settings.index_dir)
            if latest and latest != self.current.version:
                self._loading = True
                threading.Thread(target=self._background_reload, daemon=True).start()
        return self.current

    def _background_reload(self) -> None:
        try:
            self.reload()
        except Exception:  # a broken version must not take the live one down
            log.exception("index reload failed; keeping %s", self.current.version)
        finally:
            self._loading = False
