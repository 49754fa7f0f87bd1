package ops

var CheckStateFile = checkStateFile
