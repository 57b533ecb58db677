import time


def pre_connector_install(c):
    while True:
        time.sleep(0.05)
