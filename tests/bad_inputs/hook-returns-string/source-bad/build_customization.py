def post_connector_install(c):
    return 'done'
