import no_such_package_for_connector_build


def pre_connector_install(c):
    return c
