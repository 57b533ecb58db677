MAIN_FILE_NAME = '../../etc/passwd'
