# Installed into ~/.jupyter by binder/postBuild: a Binder session opens the tracking quickstart.
c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file
c.ServerApp.default_url = "/lab/tree/notebooks/01_tracking_quickstart.ipynb"
