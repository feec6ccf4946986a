"""sedensenet's Streamlit app: ``streamlit run app.py`` (extra checkpoints: ``streamlit run app.py -- --models DIR``
or SEDENSENET_MODELS). The frame (sidebar, navigation) lives in ``sedensenet/app/``, the pages in ``pages/``."""

from sedensenet.app.frame import run

run()
