// pagelab issue #8 fact probe, part 2 (helper H11). gcc -O2 -Wall -o fc2 fc2.c
// usage:
//   fc2 mkw PATH MB CHUNK          create by write() of CHUNK bytes, fsync, NO eviction; cachestat
//   fc2 mksparse PATH MB           ftruncate only
//   fc2 mkhole PATH MB HOFF HLEN   write all but [HOFF,HOFF+HLEN) MiB, fsync, evict
//   fc2 evict PATH                 fsync + FADV_DONTNEED; cachestat + mincore
//   fc2 cs PATH                    cachestat of the whole file
//   fc2 seek PATH                  SEEK_DATA / SEEK_HOLE segments
//   fc2 readio PATH BS             read() front to back, BS bytes per call: rusage, vmstat, /proc/self/io, time, folios
//   fc2 preadrand PATH N           N pread()s of 4 KiB at rand()%pages (srand(1))
//   fc2 pass PATH [fadvwill|madvwill|popread] [sleep_ms]  mmap MAP_SHARED PROT_READ, one byte/page ascending
//   fc2 dn_mapped PATH             FADV_DONTNEED while every page is mapped
//   fc2 dn_dirty PATH KB           write() KB at 0 without fsync, then FADV_DONTNEED
//   fc2 wr PATH OFF LEN            pwrite LEN bytes at OFF without fsync; cachestat
//   fc2 dirty PATH MB [fsync|fdatasync|poll]  write MB (overwrite from 0) without fsync, then sync call or poll
//   fc2 shwb PATH                  MAP_SHARED write faults vs background writeback and msync(MS_ASYNC)
//   fc2 errno DIR                  errno table
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
#include <signal.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#define PS 4096UL
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static const char *vmk[]={"pgfault","pgmajfault","pgpgin","pgpgout","thp_file_mapped","nr_file_pages","nr_dirty","nr_writeback","workingset_refault_file",0};
static long probe_rchar; // bytes this probe read from /proc itself (subtracted from rchar)
static int slurp(const char*f,char*buf,int sz){int fd=open(f,O_RDONLY);int n=0,r;while(n<sz-1&&(r=read(fd,buf+n,sz-1-n))>0)n+=r;close(fd);buf[n]=0;probe_rchar+=n;return n;}
static long field(const char*buf,const char*k,char sep){size_t l=strlen(k);const char*p=buf;while((p=strstr(p,k))){if((p==buf||p[-1]=='\n')&&p[l]==sep){return atol(p+l+1);}p+=l;}return -1;}
static void vmread(long *v){static char buf[65536];slurp("/proc/vmstat",buf,sizeof buf);for(int i=0;vmk[i];i++)v[i]=field(buf,vmk[i],' ');}
struct snap{long mi0,ma0,mi1,ma1;long vm[16];long rchar,rb,syscr,prc;};
static void ioread(struct snap*s){static char buf[4096];s->prc=probe_rchar;slurp("/proc/self/io",buf,sizeof buf);s->rchar=field(buf,"rchar",':');s->rb=field(buf,"read_bytes",':');s->syscr=field(buf,"syscr",':');}
static void snap_b(struct snap*s){struct rusage r;getrusage(RUSAGE_SELF,&r);s->mi0=r.ru_minflt;s->ma0=r.ru_majflt;vmread(s->vm);ioread(s);getrusage(RUSAGE_SELF,&r);s->mi1=r.ru_minflt;s->ma1=r.ru_majflt;}
static void snap_a(struct snap*s){struct rusage r;getrusage(RUSAGE_SELF,&r);s->mi0=r.ru_minflt;s->ma0=r.ru_majflt;ioread(s);vmread(s->vm);getrusage(RUSAGE_SELF,&r);s->mi1=r.ru_minflt;s->ma1=r.ru_majflt;}
static void delta(const char*tag,struct snap*a,struct snap*b,double dt){
 printf("%s: minflt %ld majflt %ld elapsed %.4f s | rchar %+ld read_bytes %+ld syscr %+ld |",tag,b->mi0-a->mi1,b->ma0-a->ma1,dt,
  (b->rchar-a->rchar)-(b->prc-a->prc),b->rb-a->rb,b->syscr-a->syscr-2/*the two /proc/self/io reads + vmstat reads*/);
 for(int i=0;vmk[i];i++)printf(" %s %+ld",vmk[i],b->vm[i]-a->vm[i]);printf("\n");}
struct cs_range{uint64_t off,len;};struct cs{uint64_t nr_cache,nr_dirty,nr_writeback,nr_evicted,nr_recently_evicted;};
static long cachestat(int fd,uint64_t off,uint64_t len,struct cs*c,unsigned flags){struct cs_range r={off,len};return syscall(451,fd,&r,c,flags);}
static void pcs(const char*tag,int fd){struct cs c;memset(&c,0,sizeof c);if(cachestat(fd,0,0,&c,0)){printf("%s cachestat: %s\n",tag,strerror(errno));return;}
 printf("%s cachestat: nr_cache %lu nr_dirty %lu nr_writeback %lu nr_evicted %lu nr_recently_evicted %lu\n",tag,(unsigned long)c.nr_cache,(unsigned long)c.nr_dirty,(unsigned long)c.nr_writeback,(unsigned long)c.nr_evicted,(unsigned long)c.nr_recently_evicted);}
static void meminfo(long*dirty,long*wb){static char buf[8192];slurp("/proc/meminfo",buf,sizeof buf);char*p=strstr(buf,"\nDirty:");*dirty=p?atol(p+7):-1;p=strstr(buf,"\nWriteback:");*wb=p?atol(p+11):-1;}
static void smapsline(void*addr){static char line[512];FILE*f=fopen("/proc/self/smaps","r");int in=0;unsigned long s,e;
 while(fgets(line,sizeof line,f)){probe_rchar+=strlen(line);if(sscanf(line,"%lx-%lx ",&s,&e)==2&&strchr(line,'-')<strchr(line,' ')){in=(s==(unsigned long)addr);continue;}
  if(in&&(strstr(line,"Rss:")==line||strstr(line,"FilePmdMapped")==line||strstr(line,"Private_Dirty")==line||strstr(line,"Private_Clean")==line)){line[strlen(line)-1]=0;printf("  smaps %s\n",line);}}fclose(f);}
static long resid(int fd,size_t len){void*p=mmap(0,len,PROT_READ,MAP_SHARED,fd,0);size_t n=(len+PS-1)/PS;unsigned char*v=malloc(n);mincore(p,len,v);long c=0;for(size_t i=0;i<n;i++)c+=v[i]&1;munmap(p,len);free(v);return c;}
// folio layout (same method as fc.c): pagemap -> PFN -> kpageflags; pages must be mapped. Prints runs "order x count".
static void folios(char*p,size_t len){int pm=open("/proc/self/pagemap",O_RDONLY),kf=open("/proc/kpageflags",O_RDONLY);size_t n=len/PS;long hist[12]={0};long notp=0,ramark=0;
 uint64_t *ent=malloc(n*8);pread(pm,ent,n*8,((uintptr_t)p/PS)*8);size_t i=0;char seq[8192];int sl=0;int lo=-1;long run=0;size_t runstart=0;
 while(i<n){int o;size_t k=1;uint64_t fl=0;if(!(ent[i]>>63)){notp++;o=-1;}else{uint64_t pfn=ent[i]&((1ULL<<55)-1);pread(kf,&fl,8,pfn*8);
   if(fl&(1ULL<<15)){while(i+k<n&&(ent[i+k]>>63)&&((ent[i+k]&((1ULL<<55)-1))==pfn+k)){uint64_t f2;pread(kf,&f2,8,(pfn+k)*8);if(!(f2&(1ULL<<16)))break;k++;}}
   o=0;while((1UL<<o)<k)o++;hist[o]++;if(fl&(1ULL<<9))ramark++;}
  if(o!=lo){if(run&&sl<8000)sl+=snprintf(seq+sl,8192-sl,"[%zuK: o%d x%ld] ",runstart*4,lo,run);lo=o;run=0;runstart=i;}run++;i+=k;}
 if(run&&sl<8000)sl+=snprintf(seq+sl,8192-sl,"[%zuK: o%d x%ld]",runstart*4,lo,run);
 long tot=0;printf("  folios: notpresent %ld",notp);for(int o=0;o<12;o++)if(hist[o]){printf(" order%d x%ld",o,hist[o]);tot+=hist[o];}printf(" (total %ld, PG_readahead %ld)\n  runs: %s\n",tot,ramark,seq);free(ent);close(pm);close(kf);}
static void folios_fd(int fd,size_t len){char*p=mmap(0,len,PROT_READ,MAP_SHARED,fd,0);madvise(p,len,MADV_NOHUGEPAGE);madvise(p,len,MADV_POPULATE_READ);folios(p,len);munmap(p,len);}
static void fill(char*buf,size_t n,size_t base){for(size_t j=0;j<n;j+=PS)snprintf(buf+j,64,"blk %zu",base+j);}
static sigjmp_buf jb;static void onbus(int s){(void)s;siglongjmp(jb,1);}
static int touch(volatile char*a){struct sigaction sa={0};sa.sa_handler=onbus;sigaction(SIGBUS,&sa,0);sigaction(SIGSEGV,&sa,0);if(sigsetjmp(jb,1))return -1;(void)*a;return 0;}
#define E(desc,expr) do{errno=0;long _r=(long)(expr);printf("  %-62s -> %s\n",desc,_r==-1?strerrorname_np(errno):"ok");}while(0)
#define EM(desc,expr) do{errno=0;void*_r=(expr);printf("  %-62s -> %s\n",desc,_r==MAP_FAILED?strerrorname_np(errno):"ok");if(_r!=MAP_FAILED)munmap(_r,PS);}while(0)
int main(int argc,char**argv){if(argc<3)return 2;char*cmd=argv[1],*path=argv[2];struct snap a,b;double t0;now();
 if(!strcmp(cmd,"mkw")){size_t mb=atol(argv[3]),ch=atol(argv[4]);int fd=open(path,O_RDWR|O_CREAT|O_TRUNC,0644);char*buf=malloc(ch);size_t tot=mb<<20;t0=now();
  for(size_t o=0;o<tot;o+=ch){fill(buf,ch,o);if(write(fd,buf,ch)!=(ssize_t)ch)perror("write");}double tw=now()-t0;pcs("after write",fd);fsync(fd);printf("mkw %zu MiB chunk %zu: write %.3f s, write+fsync %.3f s\n",mb,ch,tw,now()-t0);pcs("after fsync",fd);return 0;}
 if(!strcmp(cmd,"mksparse")){int fd=open(path,O_RDWR|O_CREAT|O_TRUNC,0644);ftruncate(fd,atol(argv[3])<<20);fsync(fd);pcs("mksparse",fd);return 0;}
 if(!strcmp(cmd,"mkhole")){size_t mb=atol(argv[3]),ho=atol(argv[4]),hl=atol(argv[5]);int fd=open(path,O_RDWR|O_CREAT|O_TRUNC,0644);char*buf=malloc(1<<20);
  for(size_t i=0;i<mb;i++){if(i>=ho&&i<ho+hl)continue;fill(buf,1<<20,i<<20);pwrite(fd,buf,1<<20,i<<20);}ftruncate(fd,mb<<20);fsync(fd);posix_fadvise(fd,0,0,POSIX_FADV_DONTNEED);pcs("mkhole",fd);return 0;}
 int fd=open(path,O_RDWR);if(fd<0&&strcmp(cmd,"errno")){perror(path);return 1;}struct stat st;fstat(fd,&st);size_t len=st.st_size,n=len/PS;
 if(!strcmp(cmd,"evict")){fsync(fd);posix_fadvise(fd,0,0,POSIX_FADV_DONTNEED);printf("evict: resident %ld of %zu\n",resid(fd,len),n);pcs("evict",fd);return 0;}
 if(!strcmp(cmd,"cs")){pcs("cs",fd);return 0;}
 if(!strcmp(cmd,"seek")){off_t o=0;printf("seek %s size %zu:",path,len);while(o<(off_t)len){off_t d=lseek(fd,o,SEEK_DATA);if(d<0){printf(" SEEK_DATA(%ld)=-1 %s",(long)o,strerrorname_np(errno));break;}off_t h=lseek(fd,d,SEEK_HOLE);printf(" data[%ld,%ld)",(long)d,(long)h);o=h;}
  errno=0;off_t r=lseek(fd,len,SEEK_DATA);printf(" | SEEK_DATA(size)=%ld %s SEEK_HOLE(0)=%ld\n",(long)r,r<0?strerrorname_np(errno):"",(long)lseek(fd,0,SEEK_HOLE));return 0;}
 if(!strcmp(cmd,"readio")||!strcmp(cmd,"preadrand")){size_t bs=!strcmp(cmd,"readio")?atol(argv[3]):PS;char*buf=malloc(bs);memset(buf,1,bs);size_t tot=0;
  pcs("before",fd);snap_b(&a);t0=now();
  if(!strcmp(cmd,"readio")){ssize_t r;while((r=read(fd,buf,bs))>0)tot+=r;}else{long cnt=atol(argv[3]);srand(1);for(long i=0;i<cnt;i++){off_t off=(off_t)(rand()%n)*PS;tot+=pread(fd,buf,PS,off);}}
  double dt=now()-t0;snap_a(&b);delta(cmd,&a,&b,dt);printf("  bytes %zu, resident after %ld of %zu\n",tot,resid(fd,len),n);pcs("after",fd);
  if(resid(fd,len)==(long)n)folios_fd(fd,len);return 0;}
 if(!strcmp(cmd,"pass")){const char*mode=argc>3?argv[3]:"none";int ms=argc>4?atoi(argv[4]):0;printf("pass %s mode %s sleep %d ms, resident before %ld\n",path,mode,ms,resid(fd,len));
  if(!strcmp(mode,"fadvwill")){snap_b(&a);t0=now();int r=posix_fadvise(fd,0,0,POSIX_FADV_WILLNEED);double dt=now()-t0;snap_a(&b);delta("FADV_WILLNEED call",&a,&b,dt);printf("  ret %d resident right after %ld\n",r,resid(fd,len));if(ms)usleep(ms*1000);printf("  resident after sleep %ld\n",resid(fd,len));}
  char*p=mmap(0,len,PROT_READ,MAP_SHARED,fd,0);
  if(!strcmp(mode,"madvwill")){snap_b(&a);t0=now();int r=madvise(p,len,MADV_WILLNEED);double dt=now()-t0;snap_a(&b);delta("MADV_WILLNEED call",&a,&b,dt);printf("  ret %d resident right after %ld\n",r,resid(fd,len));if(ms)usleep(ms*1000);printf("  resident after sleep %ld\n",resid(fd,len));}
  if(!strcmp(mode,"popread")){snap_b(&a);t0=now();int r=madvise(p,len,MADV_POPULATE_READ);double dt=now()-t0;snap_a(&b);delta("MADV_POPULATE_READ call",&a,&b,dt);printf("  ret %d\n",r);smapsline(p);}
  volatile char s=0;snap_b(&a);t0=now();for(size_t i=0;i<n;i++)s+=p[i*PS];double dt=now()-t0;snap_a(&b);delta("read pass",&a,&b,dt);smapsline(p);pcs("after pass",fd);folios(p,len);return 0;}
 if(!strcmp(cmd,"dn_mapped")){char*p=mmap(0,len,PROT_READ,MAP_SHARED,fd,0);madvise(p,len,MADV_POPULATE_READ);smapsline(p);pcs("mapped, before",fd);
  int r=posix_fadvise(fd,0,0,POSIX_FADV_DONTNEED);printf("  FADV_DONTNEED ret %d; resident (fresh mapping mincore) %ld of %zu\n",r,resid(fd,len),n);pcs("mapped, after DONTNEED",fd);smapsline(p);
  munmap(p,len);r=posix_fadvise(fd,0,0,POSIX_FADV_DONTNEED);printf("  after munmap, FADV_DONTNEED again: resident %ld\n",resid(fd,len));pcs("unmapped, after DONTNEED",fd);return 0;}
 if(!strcmp(cmd,"dn_dirty")){size_t kb=atol(argv[3]);char*buf=malloc(kb<<10);fill(buf,kb<<10,0);pcs("before",fd);pwrite(fd,buf,kb<<10,0);pcs("after write (no fsync)",fd);
  t0=now();posix_fadvise(fd,0,0,POSIX_FADV_DONTNEED);double dt=now()-t0;printf("  FADV_DONTNEED took %.4f s\n",dt);pcs("right after DONTNEED",fd);usleep(200000);pcs("+0.2 s",fd);
  posix_fadvise(fd,0,0,POSIX_FADV_DONTNEED);pcs("after 2nd DONTNEED",fd);return 0;}
 if(!strcmp(cmd,"wr")){size_t off=atol(argv[3]),l=atol(argv[4]);char*buf=malloc(l);fill(buf,l,off);pwrite(fd,buf,l,off);pcs("after pwrite (no fsync)",fd);return 0;}
 if(!strcmp(cmd,"dirty")){size_t mb=atol(argv[3]);const char*how=argc>4?argv[4]:"poll";char*buf=malloc(1<<20);long d0,w0,d,w;long v0[16],v[16];meminfo(&d0,&w0);vmread(v0);pcs("before",fd);
  for(size_t i=0;i<mb;i++){fill(buf,1<<20,i<<20);pwrite(fd,buf,1<<20,i<<20);}double tw=now();meminfo(&d,&w);vmread(v);pcs("after write",fd);
  printf("  meminfo Dirty %+ld kB Writeback %+ld kB | vmstat nr_dirty %+ld nr_writeback %+ld\n",d-d0,w-w0,v[6]-v0[6],v[7]-v0[7]);
  if(!strcmp(how,"poll")){for(int k=1;k<=90;k++){usleep(500000);struct cs c;cachestat(fd,0,0,&c,0);meminfo(&d,&w);vmread(v);printf("  t=%.1f s file nr_dirty %lu nr_writeback %lu | meminfo Dirty %ld kB Writeback %ld kB | vmstat nr_dirty %ld\n",now()-tw,(unsigned long)c.nr_dirty,(unsigned long)c.nr_writeback,d,w,v[6]);if(c.nr_dirty==0&&c.nr_writeback==0&&k>2)break;}}
  else{t0=now();int r=!strcmp(how,"fsync")?fsync(fd):fdatasync(fd);double dt=now()-t0;meminfo(&d,&w);vmread(v);printf("  %s ret %d took %.4f s\n",how,r,dt);pcs("after sync",fd);printf("  vmstat nr_dirty %+ld nr_writeback %+ld\n",v[6]-v0[6],v[7]-v0[7]);}
  return 0;}
 if(!strcmp(cmd,"shwb")){char*p=mmap(0,len,PROT_READ|PROT_WRITE,MAP_SHARED,fd,0);pcs("before",fd);
  snap_b(&a);for(size_t i=0;i<n;i++)p[i*PS]=1;snap_a(&b);delta("write pass 1",&a,&b,0);pcs("after write 1",fd);
  double tw=now();struct cs c;int k;for(k=0;k<100;k++){usleep(500000);cachestat(fd,0,0,&c,0);if(c.nr_dirty==0&&c.nr_writeback==0)break;}printf("  background writeback cleaned the file after %.1f s (polls %d)\n",now()-tw,k+1);pcs("after bg writeback",fd);
  snap_b(&a);for(size_t i=0;i<n;i++)p[i*PS]=2;snap_a(&b);delta("write pass 2 (after bg writeback)",&a,&b,0);pcs("after write 2",fd);
  snap_b(&a);t0=now();int r=msync(p,len,MS_ASYNC);double dt=now()-t0;snap_a(&b);delta("msync(MS_ASYNC)",&a,&b,dt);printf("  ret %d\n",r);pcs("right after MS_ASYNC",fd);usleep(100000);pcs("+0.1 s",fd);
  snap_b(&a);for(size_t i=0;i<n;i++)p[i*PS]=3;snap_a(&b);delta("write pass 3 (after MS_ASYNC)",&a,&b,0);
  snap_b(&a);r=msync(p,len,MS_SYNC);snap_a(&b);delta("msync(MS_SYNC)",&a,&b,0);pcs("after MS_SYNC",fd);
  snap_b(&a);for(size_t i=0;i<n;i++)p[i*PS]=4;snap_a(&b);delta("write pass 4 (after MS_SYNC)",&a,&b,0);return 0;}
 if(!strcmp(cmd,"errno")){char f[512],sp[512],missing[512];snprintf(f,512,"%s/e_file",path);snprintf(sp,512,"%s/e_sparse",path);snprintf(missing,512,"%s/e_missing",path);
  int w=open(f,O_RDWR|O_CREAT|O_TRUNC,0644);char buf[PS*3];memset(buf,7,sizeof buf);write(w,buf,PS*2+100);fsync(w);/* size 2 pages + 100 bytes */
  int ro=open(f,O_RDONLY),wo=open(f,O_WRONLY),dir=open(path,O_RDONLY|O_DIRECTORY);int closed=open(f,O_RDONLY);close(closed);
  printf("errno table (file %s, size %d)\n",f,(int)(PS*2+100));
  EM("mmap MAP_SHARED PROT_READ|PROT_WRITE of O_RDONLY fd",mmap(0,PS,PROT_READ|PROT_WRITE,MAP_SHARED,ro,0));
  EM("mmap MAP_SHARED PROT_READ of O_RDONLY fd",mmap(0,PS,PROT_READ,MAP_SHARED,ro,0));
  EM("mmap MAP_PRIVATE PROT_READ|PROT_WRITE of O_RDONLY fd",mmap(0,PS,PROT_READ|PROT_WRITE,MAP_PRIVATE,ro,0));
  {void*q=mmap(0,PS,PROT_READ,MAP_SHARED,ro,0);errno=0;int r=mprotect(q,PS,PROT_READ|PROT_WRITE);printf("  %-62s -> %s\n","mprotect(+PROT_WRITE) of MAP_SHARED map of O_RDONLY fd",r?strerrorname_np(errno):"ok");munmap(q,PS);}
  EM("mmap MAP_SHARED PROT_READ of O_WRONLY fd",mmap(0,PS,PROT_READ,MAP_SHARED,wo,0));
  EM("mmap MAP_SHARED PROT_WRITE of O_WRONLY fd",mmap(0,PS,PROT_WRITE,MAP_SHARED,wo,0));
  EM("mmap MAP_PRIVATE PROT_READ of O_WRONLY fd",mmap(0,PS,PROT_READ,MAP_PRIVATE,wo,0));
  EM("mmap offset 100 (unaligned)",mmap(0,PS,PROT_READ,MAP_SHARED,ro,100));
  EM("mmap of a directory fd",mmap(0,PS,PROT_READ,MAP_SHARED,dir,0));
  EM("mmap of a closed fd",mmap(0,PS,PROT_READ,MAP_SHARED,closed,0));
  EM("mmap length 0",mmap(0,0,PROT_READ,MAP_SHARED,ro,0));
  EM("mmap offset far beyond EOF (1 GiB), MAP_SHARED",mmap(0,PS,PROT_READ,MAP_SHARED,ro,1<<30));
  E("read on O_WRONLY fd",read(wo,buf,10));
  E("write on O_RDONLY fd",write(ro,buf,10));
  E("read on a directory fd",read(dir,buf,10));
  E("read on a closed fd",read(closed,buf,10));
  E("pread offset -1",pread(ro,buf,10,-1));
  E("pwrite offset -1",pwrite(w,buf,10,-1));
  E("ftruncate on O_RDONLY fd",ftruncate(ro,0));
  E("ftruncate length -1 (O_RDWR)",ftruncate(w,-1));
  E("ftruncate on a closed fd",ftruncate(closed,0));
  E("lseek whence 99",lseek(ro,0,99));
  E("lseek SEEK_SET -1",lseek(ro,-1,SEEK_SET));
  {errno=0;int r=posix_fadvise(ro,0,0,99);printf("  %-62s -> %s\n","posix_fadvise advice 99 (returns the errno)",r?strerrorname_np(r):"ok");}
  {errno=0;int r=posix_fadvise(ro,0,-1,POSIX_FADV_DONTNEED);printf("  %-62s -> %s\n","posix_fadvise len -1",r?strerrorname_np(r):"ok");}
  {errno=0;int r=posix_fadvise(ro,-1,PS,POSIX_FADV_DONTNEED);printf("  %-62s -> %s\n","posix_fadvise offset -1",r?strerrorname_np(r):"ok");}
  {errno=0;int r=posix_fadvise(closed,0,0,POSIX_FADV_DONTNEED);printf("  %-62s -> %s\n","posix_fadvise closed fd",r?strerrorname_np(r):"ok");}
  {errno=0;int r=posix_fadvise(dir,0,0,POSIX_FADV_DONTNEED);printf("  %-62s -> %s\n","posix_fadvise directory fd",r?strerrorname_np(r):"ok");}
  E("fsync on O_RDONLY fd",fsync(ro));
  E("fsync on a closed fd",fsync(closed));
  char*m=mmap(0,PS*4,PROT_READ,MAP_SHARED,ro,0);
  E("msync addr+100 (unaligned)",msync(m+100,PS,MS_SYNC));
  E("msync MS_SYNC|MS_ASYNC",msync(m,PS,MS_SYNC|MS_ASYNC));
  E("msync flags 8 (unknown)",msync(m,PS,8));
  E("msync len 0",msync(m,0,MS_SYNC));
  {char*u=mmap(0,PS*4,PROT_READ,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);munmap(u,PS*4);E("msync on an unmapped range",msync(u,PS,MS_SYNC));
   char*v=mmap(0,PS*4,PROT_READ,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);munmap(v+PS,PS);E("msync over a range with a gap",msync(v,PS*3,MS_SYNC));E("msync MS_ASYNC over a range with a gap",msync(v,PS*3,MS_ASYNC));munmap(v,PS*4);}
  E("msync MS_INVALIDATE of a mapping",msync(m,PS,MS_INVALIDATE));
  {char*u=mmap(0,PS,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);mlock(u,PS);E("msync MS_INVALIDATE of an mlocked range",msync(u,PS,MS_INVALIDATE|MS_SYNC));munmap(u,PS);}
  printf("  access file page 0 (offset 0)                                 -> %s\n",touch(m)?"SIGBUS":"ok");
  printf("  access offset size-1 (last byte, page 2)                      -> %s\n",touch(m+PS*2+99)?"SIGBUS":"ok");
  printf("  access offset size (page 2, just past EOF, same page)         -> %s\n",touch(m+PS*2+100)?"SIGBUS":"ok");
  printf("  access last byte of page 2 (offset 3*4096-1)                  -> %s\n",touch(m+PS*3-1)?"SIGBUS":"ok");
  printf("  access page 3 (first page wholly past EOF, inside the mapping) -> %s\n",touch(m+PS*3)?"SIGBUS":"ok");
  munmap(m,PS*4);
  {char*mm=mmap(0,PS*3,PROT_READ|PROT_WRITE,MAP_SHARED,w,0);volatile char s=0;for(int i=0;i<3;i++)s+=mm[i*PS];ftruncate(w,PS);
   printf("  after ftruncate(size->4096) of a mapped file: page 0          -> %s\n",touch(mm)?"SIGBUS":"ok");
   printf("  after ftruncate(size->4096): page 1 (cut off, was mapped)      -> %s\n",touch(mm+PS)?"SIGBUS":"ok");
   ftruncate(w,PS*2+100);printf("  after ftruncate back to 2 pages+100: page 1                    -> %s\n",touch(mm+PS)?"SIGBUS":"ok");munmap(mm,PS*3);}
  {char*pm=mmap(0,PS*4,PROT_READ|PROT_WRITE,MAP_PRIVATE,ro,0);printf("  MAP_PRIVATE: write to page 3 (wholly past EOF)                -> %s\n",touch(pm+PS*3)?"SIGBUS":"ok");munmap(pm,PS*4);}
  E("open missing file O_RDONLY",open(missing,O_RDONLY));
  E("open existing file O_CREAT|O_EXCL",open(f,O_RDWR|O_CREAT|O_EXCL,0644));
  E("open directory O_RDWR",open(path,O_RDWR));
  E("open file with O_DIRECTORY",open(f,O_RDONLY|O_DIRECTORY));
  E("open missing/child (parent missing) O_CREAT",open(strcat(strcpy(buf,missing),"/x"),O_RDWR|O_CREAT,0644));
  E("close of a closed fd",close(closed));
  {struct cs c;E("cachestat flags 1",cachestat(ro,0,0,&c,1));E("cachestat closed fd",cachestat(closed,0,0,&c,0));E("cachestat directory fd",cachestat(dir,0,0,&c,0));
   E("cachestat off beyond EOF",cachestat(ro,1<<30,PS,&c,0));printf("    (beyond EOF: nr_cache %lu)\n",(unsigned long)c.nr_cache);E("cachestat on O_WRONLY fd",cachestat(wo,0,0,&c,0));
   E("cachestat NULL range ptr",syscall(451,ro,NULL,&c,0));
   int pf[2];pipe(pf);E("cachestat on a pipe",cachestat(pf[0],0,0,&c,0));}
  unlink(f);
  int sfd=open(sp,O_RDWR|O_CREAT|O_TRUNC,0644);ftruncate(sfd,64<<20);
  errno=0;off_t r1=lseek(sfd,0,SEEK_DATA);int e1=errno;errno=0;off_t r2=lseek(sfd,0,SEEK_HOLE);int e2=errno;errno=0;off_t r3=lseek(sfd,64<<20,SEEK_HOLE);int e3=errno;
  printf("  sparse 64 MiB: SEEK_DATA(0) -> %ld %s; SEEK_HOLE(0) -> %ld %s; SEEK_HOLE(size) -> %ld %s\n",(long)r1,r1<0?strerrorname_np(e1):"",(long)r2,r2<0?strerrorname_np(e2):"",(long)r3,r3<0?strerrorname_np(e3):"");
  unlink(sp);return 0;}
 return 2;}
