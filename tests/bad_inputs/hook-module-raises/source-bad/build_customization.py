import os

TOKEN = os.environ['CONNECTOR_BUILD_NO_SUCH_VARIABLE']
