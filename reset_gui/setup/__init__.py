"""The Setup tab: ``tab.SetupTab`` lays out one editor per config section (``checkpoint``,
``mixture``, ``judges``, ``stages``, built with the pydantic form kit in ``forms``) over a Qt-free
``draft.ConfigDraft``. Nothing is imported here, so ``reset_gui.setup.draft`` loads without Qt."""
