MAIN_FILE_NAME = 'main_dev.py'
