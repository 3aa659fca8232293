// pagelab issue #8 fact probe (helper H10). gcc -O2 -Wall -o fc fc.c
// usage: fc mk PATH MB | evict PATH | warm_read PATH | warm_rand PATH [bs] | resid PATH | folios PATH
//        fault PATH shared|private read|write|rw|rwr|msync NONE|random|seq|nohuge|hugepage asc|rand
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/resource.h>
#define PS 4096UL
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static const char *vmk[]={"pgfault","pgmajfault","pgpgin","thp_file_mapped","thp_file_alloc","nr_file_pages","nr_mapped","nr_dirty","pgactivate",0};

static void vmread(long *v){static char buf[65536];int fd=open("/proc/vmstat",O_RDONLY);int n=read(fd,buf,sizeof buf-1);close(fd);buf[n]=0;
 for(int i=0;vmk[i];i++){v[i]=0;char *p=buf;size_t l=strlen(vmk[i]);while((p=strstr(p,vmk[i]))){if((p==buf||p[-1]=='\n')&&p[l]==' '){v[i]=atol(p+l+1);break;}p+=l;}}}
struct snap{long mi0,ma0,mi1,ma1;long vm[16];};
static void snap(struct snap*s){struct rusage r;getrusage(RUSAGE_SELF,&r);s->mi0=r.ru_minflt;s->ma0=r.ru_majflt;vmread(s->vm);getrusage(RUSAGE_SELF,&r);s->mi1=r.ru_minflt;s->ma1=r.ru_majflt;}
static void delta(const char*tag,struct snap*a,struct snap*b,double dt){printf("%s: minflt %ld majflt %ld  elapsed %.4f s |",tag,b->mi0-a->mi1,b->ma0-a->ma1,dt);
 for(int i=0;vmk[i];i++)printf(" %s %+ld",vmk[i],b->vm[i]-a->vm[i]);printf("\n");}
static void smaps(void*addr){static char line[512];FILE*f=fopen("/proc/self/smaps","r");int in=0;unsigned long s,e;
 while(fgets(line,sizeof line,f)){if(sscanf(line,"%lx-%lx",&s,&e)==2&&strchr(line,' ')&&line[strlen(line)-1]=='\n'&&strchr(line,'-')<strchr(line,' ')){in=(s==(unsigned long)addr);continue;}
  if(in&&(strstr(line,"Rss:")==line||strstr(line,"FilePmdMapped")==line||strstr(line,"Private_Dirty")==line||strstr(line,"Private_Clean")==line||strstr(line,"Shared_Clean")==line||strstr(line,"Shared_Dirty")==line||strstr(line,"Anonymous:")==line||strstr(line,"VmFlags")==line)){line[strlen(line)-1]=0;printf("  smaps %s\n",line);}}
 fclose(f);}
static long resid(int fd,size_t len){void*p=mmap(0,len,PROT_READ,MAP_SHARED,fd,0);size_t n=len/PS;unsigned char*v=malloc(n);mincore(p,len,v);long c=0;for(size_t i=0;i<n;i++)c+=v[i]&1;munmap(p,len);free(v);return c;}
// folio layout from pagemap+kpageflags of a mapping (pages must be mapped)
static void folios(char*p,size_t len){int pm=open("/proc/self/pagemap",O_RDONLY),kf=open("/proc/kpageflags",O_RDONLY);size_t n=len/PS;long hist[12]={0};long notp=0,pmdlike=0,ramark=0;
 uint64_t *ent=malloc(n*8);pread(pm,ent,n*8,((uintptr_t)p/PS)*8);
 size_t i=0;char seq[4096];int sl=0;
 while(i<n){if(!(ent[i]>>63)){notp++;i++;continue;}uint64_t pfn=ent[i]&((1ULL<<55)-1),fl;pread(kf,&fl,8,pfn*8);
  size_t k=1;if(fl&(1ULL<<15)){while(i+k<n&&(ent[i+k]>>63)&&((ent[i+k]&((1ULL<<55)-1))==pfn+k)){uint64_t f2;pread(kf,&f2,8,(pfn+k)*8);if(!(f2&(1ULL<<16)))break;k++;}}
  int o=0;while((1UL<<o)<k)o++;hist[o]++;if(fl&(1ULL<<9)){ramark++;printf("  PG_readahead(KPF_RECLAIM) folio at page %zu order %d\n",i,o);}if(fl&(1ULL<<22))pmdlike++;
  if(sl<4000)sl+=snprintf(seq+sl,4096-sl,"%d ",o);i+=k;}
 printf("  folios: notpresent %ld",notp);for(int o=0;o<12;o++)if(hist[o])printf(" order%d(%luK)x%ld",o,(1UL<<o)*4,hist[o]);printf(" [THP-flagged folios %ld, readahead-marked %ld]\n  order sequence: %s\n",pmdlike,ramark,seq);free(ent);close(pm);close(kf);}
int main(int argc,char**argv){if(argc<3)return 2;char*cmd=argv[1],*path=argv[2];struct snap a,b;double t0;
 now();snap(&a);snap(&b);printf("%s",""); fflush(stdout);
 if(!strcmp(cmd,"mk")){size_t mb=atol(argv[3]);int fd=open(path,O_RDWR|O_CREAT|O_TRUNC,0644);char*buf=malloc(1<<20);for(size_t i=0;i<mb;i++){for(size_t j=0;j<(1<<20);j+=PS)snprintf(buf+j,64,"blk %zu %zu",i,j);write(fd,buf,1<<20);}
  fsync(fd);posix_fadvise(fd,0,0,POSIX_FADV_DONTNEED);printf("mk %s %zu MiB, resident after evict %ld pages\n",path,mb,resid(fd,mb<<20));return 0;}
 int fd=open(path,strcmp(argv[1],"fault")==0&&argc>4&&argv[4][0]!='r'?O_RDWR:O_RDONLY);if(strcmp(cmd,"fault")==0&&!strcmp(argv[3],"shared")&&argv[4][0]!='r')fd=open(path,O_RDWR);
 if(strcmp(cmd,"fault")==0&&!strcmp(argv[3],"shared")&&!strcmp(argv[4],"rw"))fd=open(path,O_RDWR);
 if(strcmp(cmd,"fault")==0&&!strcmp(argv[3],"shared")&&!strcmp(argv[4],"rwr"))fd=open(path,O_RDWR);
 struct stat st;fstat(fd,&st);size_t len=st.st_size,n=len/PS;
 if(!strcmp(cmd,"evict")){fsync(fd);posix_fadvise(fd,0,0,POSIX_FADV_DONTNEED);printf("evict: resident %ld of %zu pages\n",resid(fd,len),n);return 0;}
 if(!strcmp(cmd,"resid")){printf("resident %ld of %zu pages\n",resid(fd,len),n);return 0;}
 if(!strcmp(cmd,"warm_read")||!strcmp(cmd,"warm_rand")){size_t bs=argc>3?atol(argv[3]):(1<<20);char*buf=malloc(bs);if(!strcmp(cmd,"warm_rand"))posix_fadvise(fd,0,0,POSIX_FADV_RANDOM);
  snap(&a);t0=now();size_t tot=0;ssize_t r;while((r=read(fd,buf,bs))>0)tot+=r;double dt=now()-t0;snap(&b);delta(cmd,&a,&b,dt);printf("  read %zu bytes bs %zu, resident %ld of %zu\n",tot,bs,resid(fd,len),n);return 0;}
 if(!strcmp(cmd,"folios")){printf("resident %ld of %zu\n",resid(fd,len),n);char*p=mmap(0,len,PROT_READ,MAP_SHARED,fd,0);madvise(p,len,MADV_NOHUGEPAGE);madvise(p,len,MADV_POPULATE_READ);folios(p,len);return 0;}
 if(!strcmp(cmd,"fault")){int shared=!strcmp(argv[3],"shared");char*op=argv[4],*adv=argv[5];int rnd=argc>6&&!strcmp(argv[6],"rand");
  int wr=strcmp(op,"read")!=0;int pop=!strcmp(adv,"populate");snap(&a);char*p=mmap(0,len,wr?PROT_READ|PROT_WRITE:PROT_READ,(shared?MAP_SHARED:MAP_PRIVATE)|(pop?MAP_POPULATE:0),fd,0);snap(&b);if(pop){delta("mmap(MAP_POPULATE)",&a,&b,0);smaps(p);}
  if(!strcmp(adv,"popread")||!strcmp(adv,"popwrite")){snap(&a);if(madvise(p,len,adv[3]=='r'?MADV_POPULATE_READ:MADV_POPULATE_WRITE))perror("populate");snap(&b);delta(adv,&a,&b,0);smaps(p);}if(p==MAP_FAILED){perror("mmap");return 1;}
  int adv_v=-1;if(!strcmp(adv,"random"))adv_v=MADV_RANDOM;if(!strcmp(adv,"seq"))adv_v=MADV_SEQUENTIAL;if(!strcmp(adv,"nohuge"))adv_v=MADV_NOHUGEPAGE;if(!strcmp(adv,"hugepage"))adv_v=MADV_HUGEPAGE;
  if(adv_v>=0&&madvise(p,len,adv_v))perror("madvise");
  printf("map %p (2M-aligned: %s) len %zu pages %zu resident-before %ld\n",p,((uintptr_t)p&0x1fffff)?"no":"yes",len,n,resid(fd,len));
  size_t*ord=malloc(n*sizeof*ord);for(size_t i=0;i<n;i++)ord[i]=i;if(rnd){srand(1);for(size_t i=n-1;i>0;i--){size_t j=rand()%(i+1),t=ord[i];ord[i]=ord[j];ord[j]=t;}}
  volatile char s=0;
  if(!strcmp(op,"read")||!strcmp(op,"rwr")||!strcmp(op,"msync")){static long perchunk[4096];memset(perchunk,0,sizeof perchunk);struct rusage r0,r1;snap(&a);t0=now();
   if(!rnd){getrusage(RUSAGE_SELF,&r0);for(size_t c=0;c<n/512;c++){for(size_t i=c*512;i<(c+1)*512;i++)s+=p[i*PS];getrusage(RUSAGE_SELF,&r1);perchunk[c]=r1.ru_minflt+r1.ru_majflt-r0.ru_minflt-r0.ru_majflt;r0=r1;}}
   else for(size_t i=0;i<n;i++)s+=p[ord[i]*PS];double dt=now()-t0;snap(&b);delta("read pass",&a,&b,dt);
   if(!rnd){printf("  faults per 2MiB chunk:");for(size_t c=0;c<n/512;c++)printf(" %ld",perchunk[c]);printf("\n");}smaps(p);}
  if(wr){snap(&a);t0=now();for(size_t i=0;i<n;i++)p[ord[i]*PS]=1;double dt=now()-t0;snap(&b);delta("write pass",&a,&b,dt);smaps(p);
   if(!strcmp(op,"msync")){snap(&a);msync(p,len,MS_SYNC);snap(&b);delta("msync",&a,&b,0);smaps(p);snap(&a);for(size_t i=0;i<n;i++)p[ord[i]*PS]=2;snap(&b);delta("write again",&a,&b,0);smaps(p);}
   if(!strcmp(op,"rwr")){snap(&a);for(size_t i=0;i<n;i++)s+=p[ord[i]*PS];snap(&b);delta("read again",&a,&b,0);}}
  printf("  resident-after %ld\n",resid(fd,len));
  if(!shared&&wr){snap(&a);madvise(p,len,MADV_DONTNEED);snap(&b);smaps(p);snap(&a);for(size_t i=0;i<n;i++)s+=p[ord[i]*PS];snap(&b);delta("after DONTNEED read",&a,&b,0);smaps(p);snap(&a);for(size_t i=0;i<n;i++)p[ord[i]*PS]=3;snap(&b);delta("after DONTNEED write",&a,&b,0);}
  if(!strcmp(op,"read"))folios(p,len);
  return 0;}
 return 2;}
