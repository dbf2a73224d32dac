"""The ``hf-shared-prefix`` model backend, kept apart as lm-eval keeps ``lm_eval/models/``.

``shared_prefix_lm`` is the backend (a subclass of lm-eval's ``HFLM``, registered on
import); the modules beside it are its parts: ``prefix_cache`` groups requests by shared
prefix, ``row_packing`` packs continuations into token-tree rows, ``continuous_decode``
runs greedy generation with refilled rows.
"""
