"""testlog"""
