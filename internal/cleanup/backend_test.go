package cleanup

import (
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
)

// The backends offer what compaction asks of them.
var (
	_ FileBackend  = (*filestore.Store)(nil)
	_ RedisBackend = (*redisstore.Store)(nil)
)
