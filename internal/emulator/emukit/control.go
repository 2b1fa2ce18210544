package emukit

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// HandleControl registers an API-specific control action under ControlPrefix. The
// pattern is a net/http ServeMux pattern without the prefix: "POST /throttle" serves
// POST /_emulator/throttle.
func (k *Kit) HandleControl(pattern string, h http.HandlerFunc) {
	method, path, ok := cutPattern(pattern)
	if !ok {
		k.control.HandleFunc("/_emulator"+pattern, h)
		return
	}
	k.control.HandleFunc(method+" /_emulator"+path, h)
}

func cutPattern(p string) (method, path string, ok bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == ' ' {
			return p[:i], p[i+1:], true
		}
	}
	return "", p, false
}

// ReadControlBody reads a control request body and decodes it strictly into v (unknown
// fields are an error). An empty body leaves v untouched.
func ReadControlBody(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	return DecodeJSON(data, v)
}

func (k *Kit) routeControl() {
	m := k.control
	m.HandleFunc("GET /_emulator/health", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "api": k.api})
	})
	m.HandleFunc("GET /_emulator/state", func(w http.ResponseWriter, _ *http.Request) {
		data, err := k.backend.StateJSON()
		writeRaw(w, data, err)
	})
	m.HandleFunc("PUT /_emulator/state", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<30))
		if err == nil {
			err = k.backend.SeedJSON(data)
		}
		if err != nil {
			WriteControlError(w, http.StatusBadRequest, "replace state: "+err.Error())
			return
		}
		data, err = k.backend.StateJSON()
		writeRaw(w, data, err)
	})
	m.HandleFunc("POST /_emulator/state/{collection}", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<30))
		if err == nil {
			err = k.backend.UpsertJSON(r.PathValue("collection"), data)
		}
		switch {
		case errors.Is(err, ErrUnknownCollection):
			WriteControlError(w, http.StatusNotFound, err.Error())
		case err != nil:
			WriteControlError(w, http.StatusBadRequest, "update "+r.PathValue("collection")+": "+err.Error())
		default:
			data, err = k.backend.StateJSON()
			writeRaw(w, data, err)
		}
	})
	m.HandleFunc("POST /_emulator/reset", func(w http.ResponseWriter, _ *http.Request) {
		k.Reset()
		WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
	})

	m.HandleFunc("GET /_emulator/faults", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]any{"faults": k.Faults()})
	})
	m.HandleFunc("POST /_emulator/faults", func(w http.ResponseWriter, r *http.Request) {
		var rule FaultRule
		if err := ReadControlBody(r, &rule); err != nil {
			WriteControlError(w, http.StatusBadRequest, "fault rule: "+err.Error())
			return
		}
		added, err := k.AddFault(rule)
		if err != nil {
			WriteControlError(w, http.StatusBadRequest, "fault rule: "+err.Error())
			return
		}
		WriteJSON(w, http.StatusCreated, added)
	})
	m.HandleFunc("DELETE /_emulator/faults", func(w http.ResponseWriter, _ *http.Request) {
		k.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("DELETE /_emulator/faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !k.RemoveFault(r.PathValue("id")) {
			WriteControlError(w, http.StatusNotFound, "no fault "+r.PathValue("id"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	m.HandleFunc("GET /_emulator/requests", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := Filter{Method: q.Get("method"), Path: q.Get("path")}
		if s := q.Get("since"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				WriteControlError(w, http.StatusBadRequest, "since must be a non-negative integer")
				return
			}
			f.Since = n
		}
		WriteJSON(w, http.StatusOK, map[string]any{"requests": k.Requests(f), "last_seq": k.LastSeq()})
	})
	m.HandleFunc("DELETE /_emulator/requests", func(w http.ResponseWriter, _ *http.Request) {
		k.ClearRequests()
		w.WriteHeader(http.StatusNoContent)
	})

	m.HandleFunc("GET /_emulator/clock", func(w http.ResponseWriter, _ *http.Request) {
		_, manual := k.clock.(*ManualClock)
		WriteJSON(w, http.StatusOK, map[string]any{"now": k.clock.Now().UTC().Format(time.RFC3339Nano), "manual": manual})
	})
	m.HandleFunc("POST /_emulator/clock", func(w http.ResponseWriter, r *http.Request) {
		mc, ok := k.clock.(*ManualClock)
		if !ok {
			WriteControlError(w, http.StatusBadRequest, "the emulator runs on the real clock; start it with a manual clock to move time")
			return
		}
		var req struct {
			Set     *time.Time `json:"set"`
			Advance *Duration  `json:"advance"`
		}
		if err := ReadControlBody(r, &req); err != nil {
			WriteControlError(w, http.StatusBadRequest, "clock: "+err.Error())
			return
		}
		switch {
		case (req.Set == nil) == (req.Advance == nil):
			WriteControlError(w, http.StatusBadRequest, `clock: give exactly one of "set" and "advance"`)
			return
		case req.Set != nil:
			mc.Set(*req.Set)
		case *req.Advance < 0:
			WriteControlError(w, http.StatusBadRequest, "clock: advance must not be negative")
			return
		default:
			mc.Advance(time.Duration(*req.Advance))
		}
		WriteJSON(w, http.StatusOK, map[string]any{"now": mc.Now().UTC().Format(time.RFC3339Nano), "manual": true})
	})

	m.HandleFunc("GET /_emulator/limits", func(w http.ResponseWriter, _ *http.Request) {
		data, err := k.backend.LimitsJSON()
		writeRaw(w, data, err)
	})
	m.HandleFunc("PUT /_emulator/limits", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
		if err == nil {
			err = k.backend.UpdateLimitsJSON(data)
		}
		if err != nil {
			WriteControlError(w, http.StatusBadRequest, "limits: "+err.Error())
			return
		}
		data, err = k.backend.LimitsJSON()
		writeRaw(w, data, err)
	})

	m.HandleFunc("/_emulator/", func(w http.ResponseWriter, r *http.Request) {
		WriteControlError(w, http.StatusNotFound, "no control route "+r.Method+" "+r.URL.Path)
	})
}

func writeRaw(w http.ResponseWriter, data []byte, err error) {
	if err != nil {
		WriteControlError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !json.Valid(data) {
		WriteControlError(w, http.StatusInternalServerError, "backend produced invalid JSON")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
