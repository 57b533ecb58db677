def pre_connector_install():
    pass
