-- POST a V2 inference body: the file named by $BODY_FILE, else a 4-float request.
local path = os.getenv("BODY_FILE")
wrk.method = "POST"
if path and path ~= "" then
  local f = assert(io.open(path, "rb"))
  wrk.body = f:read("*a")
  f:close()
else
  wrk.body = '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
end
wrk.headers["Content-Type"] = "application/json"
